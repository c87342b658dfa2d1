# cmake -DINPUT=file -DOUTPUT=file.cc -DSYMBOL=ns::name -P embed_text.cmake
# Writes a C++ source defining `const char name[]` in namespace ns with the
# file's contents (a text file without the raw-string delimiter )medsearch").
file(READ "${INPUT}" _text)
string(FIND "${_text}" ")medsearch\"" _clash)
if(NOT _clash EQUAL -1)
  message(FATAL_ERROR "${INPUT} contains the raw-string delimiter")
endif()
string(REGEX MATCH "^(.*)::([^:]+)$" _ "${SYMBOL}")
set(_ns "${CMAKE_MATCH_1}")
set(_name "${CMAKE_MATCH_2}")
file(WRITE "${OUTPUT}.tmp" "// Generated from ${INPUT} by cmake/embed_text.cmake. Do not edit.\nnamespace ${_ns} {\nextern const char ${_name}[];\nconst char ${_name}[] = R\"medsearch(${_text})medsearch\";\n}  // namespace ${_ns}\n")
file(RENAME "${OUTPUT}.tmp" "${OUTPUT}")
