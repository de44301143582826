# Text part of localmodel: tokenizer, chat templates, sampler + text output.
list(APPEND LM_SOURCES
  ${CMAKE_CURRENT_SOURCE_DIR}/tokenizer.c
  ${CMAKE_CURRENT_SOURCE_DIR}/tok_bpe.c
  ${CMAKE_CURRENT_SOURCE_DIR}/tok_wpm.c
  ${CMAKE_CURRENT_SOURCE_DIR}/tokcli.c
  ${CMAKE_CURRENT_SOURCE_DIR}/jinja.c
  ${CMAKE_CURRENT_SOURCE_DIR}/prompt.c
  ${CMAKE_CURRENT_SOURCE_DIR}/chat.c
  ${CMAKE_CURRENT_SOURCE_DIR}/sampler.c
  ${CMAKE_CURRENT_SOURCE_DIR}/grammar_schema.c
  ${CMAKE_CURRENT_SOURCE_DIR}/grammar.c
  ${CMAKE_CURRENT_SOURCE_DIR}/toolfmt.c)
