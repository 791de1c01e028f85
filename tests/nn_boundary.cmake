# src/nn is built on the public API and one door into the core: this test
# fails when it reaches further.  Run by ctest as test `nn_boundary`:
#
#   cmake -DSRC=<source dir> -DOUT=<scratch dir> -DCC=<compiler> -DNM=<nm>
#         -DCONFIG_DIR=<dir of nabla_config.h> "-DFLAGS=<warning flags>" -P tests/nn_boundary.cmake
#
# 1. Includes.  src/nn/*.c and *.h are copied into OUT/tree/nn and the src/io
#    headers into OUT/tree/io: a tree that holds none of the core's headers.
#    Each source is compiled there with only include/ (nabla.h), the
#    generated nabla_config.h and OUT/tree on the include path, so an
#    #include of anything else of src/ ("internal.h", "../tensor.h",
#    "kernels/kernels.h", ...) fails, whatever path it is written with.
# 2. Symbols.  The nb__ functions the objects call without defining them
#    must be declared in src/nn/hook.h or a src/io header: a core internal
#    declared by hand in src/nn fails here.
foreach(v SRC OUT CC NM CONFIG_DIR)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "nn_boundary: -D${v}=... is missing")
  endif()
endforeach()
separate_arguments(flags UNIX_COMMAND "${FLAGS}")

file(REMOVE_RECURSE ${OUT})
file(MAKE_DIRECTORY ${OUT}/tree/nn ${OUT}/tree/io ${OUT}/obj)
file(GLOB nn_files ${SRC}/src/nn/*.c ${SRC}/src/nn/*.h)
file(GLOB io_headers ${SRC}/src/io/*.h)
file(COPY ${nn_files} DESTINATION ${OUT}/tree/nn)
file(COPY ${io_headers} DESTINATION ${OUT}/tree/io)

# 1. every source compiles with only nabla.h, src/io's headers and src/nn's own
file(GLOB sources ${OUT}/tree/nn/*.c)
list(LENGTH sources count)
if(count LESS 5)
  message(FATAL_ERROR "nn_boundary: only ${count} sources found in ${SRC}/src/nn")
endif()
set(objects "")
set(failed "")
foreach(src ${sources})
  get_filename_component(name ${src} NAME_WE)
  execute_process(
    COMMAND ${CC} -std=c11 -D_POSIX_C_SOURCE=200809L ${flags} -I${SRC}/include -I${CONFIG_DIR}
            -I${OUT}/tree -c ${src} -o ${OUT}/obj/${name}.o
    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message("nn_boundary: src/nn/${name}.c does not compile on nabla.h, src/io and src/nn "
            "alone:\n${out}${err}")
    list(APPEND failed ${name}.c)
  else()
    list(APPEND objects ${OUT}/obj/${name}.o)
  endif()
endforeach()
if(failed)
  message(FATAL_ERROR "nn_boundary: FAILED: ${failed} include(s) more than nabla.h, the src/io "
                      "headers and src/nn/hook.h (see above)")
endif()

# 2. the core functions the objects use are the hook's and src/io's
set(allowed "")
file(GLOB doors ${OUT}/tree/nn/hook.h ${OUT}/tree/io/*.h)
foreach(h ${doors})
  file(READ ${h} text)
  string(REGEX MATCHALL "nb__[A-Za-z0-9_]+[ \t]*\\(" decls "${text}")
  foreach(d ${decls})
    string(REGEX REPLACE "[ \t]*\\($" "" d "${d}")
    list(APPEND allowed ${d})
  endforeach()
endforeach()
execute_process(COMMAND ${NM} -u ${objects} RESULT_VARIABLE rc1 OUTPUT_VARIABLE undefined)
execute_process(COMMAND ${NM} --defined-only ${objects} RESULT_VARIABLE rc2 OUTPUT_VARIABLE defined)
if(NOT rc1 EQUAL 0 OR NOT rc2 EQUAL 0)
  message(FATAL_ERROR "nn_boundary: ${NM} failed on the objects")
endif()
string(REGEX MATCHALL "[ \t]U[ \t]+nb__[A-Za-z0-9_]+" used "${undefined}")
string(REGEX MATCHALL "[ \t][A-Za-z][ \t]+nb__[A-Za-z0-9_]+" own "${defined}")
set(own_names "")
foreach(o ${own})
  string(REGEX REPLACE ".*[ \t]" "" o "${o}")
  list(APPEND own_names ${o})
endforeach()
set(bad "")
set(through "")
foreach(u ${used})
  string(REGEX REPLACE ".*[ \t]" "" u "${u}")
  list(FIND own_names ${u} i_own)
  list(FIND allowed ${u} i_door)
  if(i_own EQUAL -1 AND i_door EQUAL -1)
    list(APPEND bad ${u})
  elseif(i_own EQUAL -1)
    list(APPEND through ${u})
  endif()
endforeach()
if(bad)
  list(REMOVE_DUPLICATES bad)
  message(FATAL_ERROR "nn_boundary: FAILED: src/nn calls core internals that neither "
                      "src/nn/hook.h nor a src/io header declares: ${bad}")
endif()
list(REMOVE_DUPLICATES through)
list(SORT through)
message("nn_boundary: ${count} sources of src/nn compile on nabla.h, src/io and src/nn alone; "
        "the core functions they call are the hook's and src/io's: ${through}")
