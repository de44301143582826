# gguf part of llmpin_lm: GGUF reader, SHA-256 file hashing, GGUF writer
# (test fixtures and benchmarks), and the `verify` report.
list(APPEND LM_SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/gguf.c)
foreach(f sha256.c gguf_write.c verify.c)
  if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/${f})
    list(APPEND LM_SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/${f})
  endif()
endforeach()
