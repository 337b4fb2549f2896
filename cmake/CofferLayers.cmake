# The layers of coffer and who may include whom: the one place the arrows of
# docs/ARCHITECTURE.md are written down. Read by CMakeLists.txt (link lines,
# include roots) and by check_layers.cmake (the include allow-list every
# build runs), so the two cannot drift apart.
#
#   util <- crypto <- format <- {index, store} <- vfs <- {sync, fuse} <- cli
#
# A layer may include the layers below it on its path, and util; fuse only
# vfs and util (it is a translation of FUSE calls, nothing more); cli anything.

set(COFFER_LAYERS util crypto format index store vfs sync fuse cli)

set(COFFER_MAY_INCLUDE_util   util)
set(COFFER_MAY_INCLUDE_crypto crypto util)
set(COFFER_MAY_INCLUDE_format format crypto util)
set(COFFER_MAY_INCLUDE_index  index format crypto util)
set(COFFER_MAY_INCLUDE_store  store format crypto util)
set(COFFER_MAY_INCLUDE_vfs    vfs index store format crypto util)
set(COFFER_MAY_INCLUDE_sync   sync vfs index store format crypto util)
set(COFFER_MAY_INCLUDE_fuse   fuse vfs util)
set(COFFER_MAY_INCLUDE_cli    cli sync fuse vfs index store format crypto util)

# Third-party headers (the path inside <...>, as a regex) and the one layer
# that wraps each library; no other layer includes them.
set(COFFER_LIBRARY_OWNERS crypto index fuse cli)
set(COFFER_LIBRARY_HEADERS_crypto "^sodium([.]h$|/)")
set(COFFER_LIBRARY_HEADERS_index  "^sqlite3[.]h$")
set(COFFER_LIBRARY_HEADERS_fuse   "^(fuse3/|fuse[.]h$|fuse_[a-z_]*[.]h$)")
set(COFFER_LIBRARY_HEADERS_cli    "^CLI/")
# Headers no layer includes (tests only, or not a dependency).
set(COFFER_LIBRARY_HEADERS_nobody "^(doctest/|boost/)")

# The files of one layer: its sources and private headers (src/<layer>/) and
# its public headers (include/coffer/<layer>/).
function(coffer_layer_files out layer root)
  if(CMAKE_SCRIPT_MODE_FILE)
    set(reglob "")
  else()
    set(reglob CONFIGURE_DEPENDS)
  endif()
  file(GLOB_RECURSE files ${reglob}
    ${root}/src/${layer}/*.cpp ${root}/src/${layer}/*.h ${root}/src/${layer}/*.hpp
    ${root}/include/coffer/${layer}/*.h ${root}/include/coffer/${layer}/*.hpp)
  list(SORT files)
  set(${out} ${files} PARENT_SCOPE)
endfunction()
