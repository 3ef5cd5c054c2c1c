# herald_embed(OUTPUT file.cpp NAMESPACE ns FUNCTION name FILES a b ...)
# Generates a C++ source defining
#   const std::vector<std::pair<std::string_view, std::string_view>>& ns::name();
# holding each file's name (without directory) and contents, so the binary carries them.
# Regenerated whenever one of the files changes.
function(herald_embed)
  cmake_parse_arguments(E "" "OUTPUT;NAMESPACE;FUNCTION" "FILES" ${ARGN})
  add_custom_command(
    OUTPUT ${E_OUTPUT}
    COMMAND ${CMAKE_COMMAND} -DOUTPUT=${E_OUTPUT} -DNAMESPACE=${E_NAMESPACE}
            -DFUNCTION=${E_FUNCTION} "-DFILES=${E_FILES}"
            -P ${PROJECT_SOURCE_DIR}/cmake/EmbedScript.cmake
    DEPENDS ${E_FILES} ${PROJECT_SOURCE_DIR}/cmake/EmbedScript.cmake
    COMMENT "Embedding ${E_FUNCTION}"
    VERBATIM)
endfunction()
