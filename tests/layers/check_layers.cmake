# The layering, stated on its own and checked against the build: for every
# pair of layers, a file compiled with one layer's include list includes a
# header of the other. It must compile exactly when the edge is allowed
# below, and otherwise fail because the header cannot be found. A new
# layer, or a new USES in src/CMakeLists.txt, must be argued here too.
#
# cmake -DINFO=layers_info.cmake -DCC=compiler -DWORK=dir -P check_layers.cmake

# Who may include whom (besides itself and the public include/).
set(allowed_base "")
set(allowed_record base)
set(allowed_store record base)
set(allowed_core store record base)
set(allowed_engine base)
set(allowed_executors base)

# Programs that link the library (tools/, bench/, examples/) see the public
# API only.
set(allowed_users "")

# One header of each layer to include.
set(probe_base alloc.h)
set(probe_record job.h)
set(probe_store store.h)
set(probe_core manager.h)
set(probe_engine engine_internal.h)
set(probe_executors exec_util.h)

cmake_minimum_required(VERSION 3.25)
include(${INFO}) # layers, dirs_<layer>, defs_<layer>
file(MAKE_DIRECTORY ${WORK})

set(stated base record store core engine executors)
foreach(layer IN LISTS layers)
    if(NOT layer IN_LIST stated)
        message(FATAL_ERROR "layer ${layer} is built but has no stated edges here")
    endif()
endforeach()
foreach(layer IN LISTS stated)
    if(NOT layer IN_LIST layers)
        message(FATAL_ERROR "layer ${layer} is stated here but not built")
    endif()
endforeach()

# compile(LAYER HEADER RESULT OUTPUT): includes HEADER with LAYER's flags.
function(compile layer header result_var output_var)
    set(flags -std=c11 -fsyntax-only)
    foreach(d IN LISTS dirs_${layer})
        list(APPEND flags -I${d})
    endforeach()
    foreach(d IN LISTS defs_${layer})
        list(APPEND flags -D${d})
    endforeach()
    string(MAKE_C_IDENTIFIER "${layer}_${header}" unit)
    set(file ${WORK}/${unit}.c)
    file(WRITE ${file} "#include \"${header}\"\n")
    execute_process(COMMAND ${CC} ${flags} ${file}
        RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
    set(${result_var} ${rc} PARENT_SCOPE)
    set(${output_var} "${out}" PARENT_SCOPE)
endfunction()

set(failures 0)
set(checked 0)
foreach(from IN LISTS stated ITEMS users)
    foreach(to IN LISTS stated)
        compile(${from} ${probe_${to}} rc out)
        math(EXPR checked "${checked} + 1")
        if(from STREQUAL to OR to IN_LIST allowed_${from})
            if(NOT rc EQUAL 0)
                message(SEND_ERROR "${from} -> ${to} is allowed but ${probe_${to}} "
                                   "does not compile with ${from}'s include list:\n${out}")
                math(EXPR failures "${failures} + 1")
            endif()
        elseif(rc EQUAL 0)
            message(SEND_ERROR "${from} -> ${to} is forbidden but ${from} can include "
                               "${probe_${to}}")
            math(EXPR failures "${failures} + 1")
        elseif(NOT out MATCHES "No such file|file not found")
            message(SEND_ERROR "${from} -> ${to}: ${probe_${to}} failed for another reason "
                               "than not being found:\n${out}")
            math(EXPR failures "${failures} + 1")
        endif()
    endforeach()
endforeach()

# A store backend's private header is the store's alone, though the core
# sees the store's folder.
foreach(from core engine executors)
    compile(${from} sqlite/sqlite_internal.h rc out)
    math(EXPR checked "${checked} + 1")
    if(rc EQUAL 0 OR NOT out MATCHES "private to the SQLite store|No such file|file not found")
        message(SEND_ERROR "${from} can include the SQLite store's private header:\n${out}")
        math(EXPR failures "${failures} + 1")
    endif()
endforeach()

if(failures GREATER 0)
    message(FATAL_ERROR "${failures} of ${checked} layer edges wrong")
endif()
message(STATUS "layers: ${checked} edges as stated")
