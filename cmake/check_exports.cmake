# Fails unless every symbol the shared library exports belongs to the public
# API (jm_*), as -fvisibility=hidden and JM_EXTERN intend.
# Usage: cmake -DNM=<nm> -DLIB=<libjobmgr.so> -P check_exports.cmake
execute_process(
    COMMAND ${NM} -D --defined-only ${LIB}
    OUTPUT_VARIABLE out
    RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${NM} failed on ${LIB}")
endif()

string(REPLACE "\n" ";" lines "${out}")
set(public 0)
set(stray)
foreach(line IN LISTS lines)
    if(NOT line MATCHES "^[0-9a-fA-F]* +([A-Za-z]) +(.+)$")
        continue()
    endif()
    set(name ${CMAKE_MATCH_2})
    if(name MATCHES "^jm_")
        math(EXPR public "${public} + 1")
    elseif(NOT name MATCHES "^(_init|_fini|_edata|_end|__bss_start)$")
        list(APPEND stray ${name})
    endif()
endforeach()

if(stray)
    list(JOIN stray "\n  " stray)
    message(FATAL_ERROR "exported symbols outside the public API:\n  ${stray}")
endif()
if(public EQUAL 0)
    message(FATAL_ERROR "no jm_ symbol exported from ${LIB}")
endif()
message(STATUS "${public} public symbols exported, nothing else")
