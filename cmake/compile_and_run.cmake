# cmake -DCOMPILER=cc -DSOURCE=x.c -DOUTPUT=exe -DFLAGS="a;b" -DINCLUDES="d1;d2"
#       -DLIBDIR=<dir with libzmap.so> -P compile_and_run.cmake
#
# A test that compiles one C file against zmap.h (failing on any warning
# when FLAGS say -Werror), links it to libzmap, and runs the program.
set(_args)
foreach(flag IN LISTS FLAGS)
  list(APPEND _args "${flag}")
endforeach()
foreach(dir IN LISTS INCLUDES)
  list(APPEND _args "-I${dir}")
endforeach()
execute_process(
  COMMAND "${COMPILER}" ${_args} "${SOURCE}" -o "${OUTPUT}"
          "-L${LIBDIR}" -lzmap "-Wl,-rpath,${LIBDIR}"
  RESULT_VARIABLE _status)
if(NOT _status EQUAL 0)
  message(FATAL_ERROR "compiling ${SOURCE} failed (${_status})")
endif()
execute_process(COMMAND "${OUTPUT}" RESULT_VARIABLE _status)
if(NOT _status EQUAL 0)
  message(FATAL_ERROR "${OUTPUT} failed (${_status})")
endif()
