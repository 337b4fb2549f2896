# ctest layer_check: check_layers.cmake passes a tree that keeps to the
# arrows and fails, naming file:line, on each kind of wrong include.
#   cmake -DWORK_DIR=<scratch folder> -P cmake/test_check_layers.cmake
cmake_minimum_required(VERSION 3.25)
if(NOT WORK_DIR)
  message(FATAL_ERROR "set WORK_DIR")
endif()
set(checker ${CMAKE_CURRENT_LIST_DIR}/check_layers.cmake)

# Runs the checker on a tree whose one file has `body`: src/<layer>/x.cpp,
# or CASE_FILE (relative, with <layer> in it) when that is set.
function(run_case layer body out_rc out_text)
  set(root ${WORK_DIR}/tree)
  file(REMOVE_RECURSE ${root})
  file(MAKE_DIRECTORY ${root}/src/${layer} ${root}/include/coffer/${layer})
  if(CASE_FILE)
    set(rel "${CASE_FILE}")
  else()
    set(rel "src/${layer}/x.cpp")
  endif()
  file(WRITE ${root}/${rel} "${body}")
  execute_process(COMMAND ${CMAKE_COMMAND} -DLAYER=${layer} -DSOURCE_DIR=${root} -DSTAMP=${WORK_DIR}/stamp
                          -P ${checker}
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  set(${out_rc} ${rc} PARENT_SCOPE)
  set(${out_text} "${out}${err}" PARENT_SCOPE)
endfunction()

function(expect_pass layer body)
  file(REMOVE ${WORK_DIR}/stamp)
  run_case(${layer} "${body}" rc text)
  if(NOT rc EQUAL 0 OR NOT EXISTS ${WORK_DIR}/stamp)
    message(FATAL_ERROR "expected layer ${layer} to pass, got ${rc}:\n${text}")
  endif()
endfunction()

function(expect_fail layer body expected)
  file(REMOVE ${WORK_DIR}/stamp)
  run_case(${layer} "${body}" rc text)
  if(rc EQUAL 0 OR EXISTS ${WORK_DIR}/stamp)
    message(FATAL_ERROR "expected layer ${layer} to fail on\n${body}")
  endif()
  string(FIND "${text}" "${expected}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "expected \"${expected}\" in the checker's output:\n${text}")
  endif()
endfunction()

set(head "// a file\n#include <fcntl.h>\n\n")
expect_pass(fuse "${head}#include \"coffer/vfs/filesystem.h\"\n#include <fuse_lowlevel.h>\n#include \"local.h\"\n")
expect_pass(cli "${head}#include \"coffer/index/index.h\"\n#include <CLI/CLI.hpp>\n")
expect_pass(vfs "${head}// #include \"coffer/cli/cli.h\" (a comment)\nint a; int b;\n")
expect_fail(fuse "${head}#include \"coffer/vfs/filesystem.h\"\n#include \"coffer/index/index.h\"\n"
            "src/fuse/x.cpp:5: #include \"coffer/index/index.h\": layer fuse may include coffer/{fuse, vfs, util} only, not index")
expect_fail(format "${head}  #  include <coffer/vfs/core.h>\n"
            "src/format/x.cpp:4: #include <coffer/vfs/core.h>: layer format may include")
expect_fail(vfs "${head}#include <sqlite3.h>\n" "src/vfs/x.cpp:4: #include <sqlite3.h>: only layer index includes sqlite3.h")
expect_fail(util "${head}#include <sodium.h>\n" "only layer crypto includes sodium.h")
expect_fail(store "${head}#include \"../index/db.h\"\n" "src/store/x.cpp:4: #include \"../index/db.h\": no \"..\"")
expect_fail(sync "${head}#include <boost/filesystem.hpp>\n" "no layer includes boost/filesystem.hpp")
# ".." is refused first, even behind an allowed layer's prefix.
expect_fail(sync "${head}#include \"coffer/vfs/../../../src/vfs/core.h\"\n"
            "src/sync/x.cpp:4: #include \"coffer/vfs/../../../src/vfs/core.h\": no \"..\"")
# Private and public headers are checked as the sources are.
set(CASE_FILE src/sync/x.h)
expect_fail(sync "${head}#include \"coffer/fuse/session.h\"\n"
            "src/sync/x.h:4: #include \"coffer/fuse/session.h\": layer sync may include")
set(CASE_FILE include/coffer/fuse/x.h)
expect_fail(fuse "${head}#include \"coffer/store/vault.h\"\n"
            "include/coffer/fuse/x.h:4: #include \"coffer/store/vault.h\": layer fuse may include")
unset(CASE_FILE)

message(STATUS "check_layers.cmake: 3 trees passed, 9 wrong includes caught")
