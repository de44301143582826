# engine part of localmodel: kernels, worker pool, model loading and forward pass, engine (lm.h).
list(APPEND LM_SOURCES
  ${CMAKE_CURRENT_SOURCE_DIR}/kernels.c
  ${CMAKE_CURRENT_SOURCE_DIR}/quants.c
  ${CMAKE_CURRENT_SOURCE_DIR}/pool.c
  ${CMAKE_CURRENT_SOURCE_DIR}/model_load.c
  ${CMAKE_CURRENT_SOURCE_DIR}/model.c
)
if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/engine.c)
  list(APPEND LM_SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/engine.c)
endif()
