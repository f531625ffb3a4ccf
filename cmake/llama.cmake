# llama.cmake -- brings the pinned llama.cpp into the build and exposes the `llama` target.
#
# Source: the npm package node-llama-cpp@3.21.1 ships llama.cpp as a git bundle
# (package/llama/gitRelease.bundle). We `npm pack` the package into a cache outside build/,
# check the tarball's sha256, and clone the bundle into build/_deps/llama.cpp. Each step is
# skipped when its result is already there, so a second configure downloads and clones
# nothing. -DBELLOWS_LLAMA_SOURCE=<dir> uses an existing checkout instead.

set(BELLOWS_LLAMA_NPM_PACKAGE "node-llama-cpp@3.21.1")
set(BELLOWS_LLAMA_TARBALL_NAME "node-llama-cpp-3.21.1.tgz")
set(BELLOWS_LLAMA_TARBALL_SHA256 "7a231d6bafa14142a1cbed9893d4ec5bc6041b2a5f5939a623accaab4203c11f")
set(BELLOWS_LLAMA_COMMIT "80fb11ac73e66d89eae2c6a91d8a77428fa733ed")

set(BELLOWS_LLAMA_SOURCE "" CACHE PATH "Use this llama.cpp checkout instead of fetching the pinned one")

if(DEFINED ENV{BELLOWS_CACHE_DIR})
  set(_cache "$ENV{BELLOWS_CACHE_DIR}")
elseif(DEFINED ENV{XDG_CACHE_HOME})
  set(_cache "$ENV{XDG_CACHE_HOME}/bellows")
else()
  set(_cache "$ENV{HOME}/.cache/bellows")
endif()
set(BELLOWS_CACHE_DIR "${_cache}" CACHE PATH "Where the fetched llama.cpp package is kept (outside build/)")

function(bellows_fetch_llama dest)
  set(marker "${dest}/.bellows-commit")
  if(EXISTS "${marker}")
    file(READ "${marker}" have)
    string(STRIP "${have}" have)
    if(have STREQUAL BELLOWS_LLAMA_COMMIT)
      return()  # already cloned at the pinned commit: nothing to fetch
    endif()
  endif()

  find_program(BELLOWS_GIT git)
  if(NOT BELLOWS_GIT)
    message(FATAL_ERROR "git is needed to unpack llama.cpp: install the Debian package `git` (apt-get install git)")
  endif()

  set(tarball "${BELLOWS_CACHE_DIR}/${BELLOWS_LLAMA_TARBALL_NAME}")
  if(EXISTS "${tarball}")
    file(SHA256 "${tarball}" sum)
    if(NOT sum STREQUAL BELLOWS_LLAMA_TARBALL_SHA256)
      message(STATUS "bellows: cached ${tarball} has the wrong sha256; fetching it again")
      file(REMOVE "${tarball}")
    endif()
  endif()
  if(NOT EXISTS "${tarball}")
    find_program(BELLOWS_NPM npm)
    if(NOT BELLOWS_NPM)
      message(FATAL_ERROR "npm is needed to fetch llama.cpp (${BELLOWS_LLAMA_NPM_PACKAGE}): install the Debian package `npm` (apt-get install nodejs npm)")
    endif()
    file(MAKE_DIRECTORY "${BELLOWS_CACHE_DIR}")
    message(STATUS "bellows: npm pack ${BELLOWS_LLAMA_NPM_PACKAGE} into ${BELLOWS_CACHE_DIR}")
    execute_process(COMMAND "${BELLOWS_NPM}" pack "${BELLOWS_LLAMA_NPM_PACKAGE}" --silent
                    WORKING_DIRECTORY "${BELLOWS_CACHE_DIR}" RESULT_VARIABLE rc)
    if(NOT rc EQUAL 0 OR NOT EXISTS "${tarball}")
      message(FATAL_ERROR "npm pack ${BELLOWS_LLAMA_NPM_PACKAGE} failed (exit ${rc}); is the npm registry reachable?")
    endif()
    file(SHA256 "${tarball}" sum)
    if(NOT sum STREQUAL BELLOWS_LLAMA_TARBALL_SHA256)
      file(REMOVE "${tarball}")
      message(FATAL_ERROR "${BELLOWS_LLAMA_TARBALL_NAME}: sha256 ${sum}, expected ${BELLOWS_LLAMA_TARBALL_SHA256}; refusing to build from it")
    endif()
  endif()

  set(bundle "${BELLOWS_CACHE_DIR}/llama-${BELLOWS_LLAMA_COMMIT}.bundle")
  if(NOT EXISTS "${bundle}")
    set(unpack "${BELLOWS_CACHE_DIR}/unpack")
    file(REMOVE_RECURSE "${unpack}")
    file(ARCHIVE_EXTRACT INPUT "${tarball}" DESTINATION "${unpack}"
         PATTERNS "package/llama/gitRelease.bundle")
    file(RENAME "${unpack}/package/llama/gitRelease.bundle" "${bundle}")
    file(REMOVE_RECURSE "${unpack}")
  endif()

  message(STATUS "bellows: cloning llama.cpp ${BELLOWS_LLAMA_COMMIT} into ${dest}")
  file(REMOVE_RECURSE "${dest}")
  execute_process(COMMAND "${BELLOWS_GIT}" clone --quiet --no-checkout "${bundle}" "${dest}" RESULT_VARIABLE rc)
  if(rc EQUAL 0)
    execute_process(COMMAND "${BELLOWS_GIT}" -c advice.detachedHead=false checkout --quiet "${BELLOWS_LLAMA_COMMIT}"
                    WORKING_DIRECTORY "${dest}" RESULT_VARIABLE rc)
  endif()
  if(NOT rc EQUAL 0)
    file(REMOVE_RECURSE "${dest}")
    message(FATAL_ERROR "could not check out llama.cpp ${BELLOWS_LLAMA_COMMIT} from ${bundle}")
  endif()
  file(WRITE "${marker}" "${BELLOWS_LLAMA_COMMIT}\n")
endfunction()

if(BELLOWS_LLAMA_SOURCE)
  if(NOT EXISTS "${BELLOWS_LLAMA_SOURCE}/include/llama.h")
    message(FATAL_ERROR "BELLOWS_LLAMA_SOURCE=${BELLOWS_LLAMA_SOURCE} has no include/llama.h")
  endif()
  set(BELLOWS_LLAMA_DIR "${BELLOWS_LLAMA_SOURCE}")
else()
  set(BELLOWS_LLAMA_DIR "${CMAKE_BINARY_DIR}/_deps/llama.cpp")
  bellows_fetch_llama("${BELLOWS_LLAMA_DIR}")
endif()

# Only the `llama` library (and the ggml libraries under it), static, no tools/tests/examples.
set(BUILD_SHARED_LIBS OFF CACHE BOOL "" FORCE)
set(LLAMA_BUILD_COMMON OFF CACHE BOOL "" FORCE)
set(LLAMA_BUILD_TESTS OFF CACHE BOOL "" FORCE)
set(LLAMA_BUILD_TOOLS OFF CACHE BOOL "" FORCE)
set(LLAMA_BUILD_EXAMPLES OFF CACHE BOOL "" FORCE)
set(LLAMA_BUILD_SERVER OFF CACHE BOOL "" FORCE)
set(LLAMA_BUILD_APP OFF CACHE BOOL "" FORCE)
set(LLAMA_OPENSSL OFF CACHE BOOL "" FORCE)
set(LLAMA_CURL OFF CACHE BOOL "" FORCE)
set(GGML_CUDA ${BELLOWS_CUDA} CACHE BOOL "" FORCE)
# ggml's RPC backend on every build (issue 16): `bellows rpc-server`, BELLOWS_RPC. It only
# registers a backend; nothing connects anywhere unless an endpoint is configured.
set(GGML_RPC ON CACHE BOOL "" FORCE)
if(BELLOWS_CUDA AND NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
  # ggml would pick "native", which fails to configure on a machine without a GPU (a
  # build host, CI). A portable list instead; pass -DCMAKE_CUDA_ARCHITECTURES=native to
  # build for the GPU in this machine only.
  set(CMAKE_CUDA_ARCHITECTURES "75;80;86;89;90" CACHE STRING "CUDA architectures to build for")
endif()

add_subdirectory("${BELLOWS_LLAMA_DIR}" "${CMAKE_BINARY_DIR}/llama.cpp" EXCLUDE_FROM_ALL)

# The vocabulary our generated models copy their tokenizer and chat template from.
set(BELLOWS_QWEN2_VOCAB "${BELLOWS_LLAMA_DIR}/models/ggml-vocab-qwen2.gguf")
