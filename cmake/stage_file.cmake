# cmake -DSOURCE=<file> -DDESTINATION=<file> -P stage_file.cmake
#
# Copies a cargo output to its staged name when its content changed, through
# a temporary file and a rename: a program that has the old library mapped
# keeps running, and an unchanged library keeps its timestamp (no relinks).
if(NOT EXISTS "${SOURCE}")
  message(FATAL_ERROR "stage_file: ${SOURCE} does not exist (did cargo build fail?)")
endif()
if(EXISTS "${DESTINATION}" AND NOT IS_SYMLINK "${DESTINATION}")
  file(SHA256 "${SOURCE}" _new)
  file(SHA256 "${DESTINATION}" _old)
  if(_new STREQUAL _old)
    return()
  endif()
endif()
get_filename_component(_dir "${DESTINATION}" DIRECTORY)
get_filename_component(_name "${DESTINATION}" NAME)
file(MAKE_DIRECTORY "${_dir}")
file(COPY "${SOURCE}" DESTINATION "${_dir}/.staging")
get_filename_component(_source_name "${SOURCE}" NAME)
file(RENAME "${_dir}/.staging/${_source_name}" "${DESTINATION}")
file(REMOVE_RECURSE "${_dir}/.staging")
