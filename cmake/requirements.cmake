# requirements.cmake -- find the Debian libraries Bellows uses, and stop the configure step
# with the name of the package to install when one is missing.

find_package(PkgConfig QUIET)
if(NOT PKG_CONFIG_FOUND)
  message(FATAL_ERROR "pkg-config is needed: install the Debian package `pkg-config` (apt-get install pkg-config)")
endif()

# bellows_require(<prefix> <pkg-config module> <Debian package>)
# Defines the imported target Bellows::<prefix>.
function(bellows_require prefix module debian)
  pkg_check_modules(${prefix} QUIET IMPORTED_TARGET GLOBAL ${module})
  if(NOT ${prefix}_FOUND)
    message(FATAL_ERROR "${module} is missing: install the Debian package `${debian}` (apt-get install ${debian}), or run scripts/install-deps.sh")
  endif()
  add_library(Bellows::${prefix} ALIAS PkgConfig::${prefix})
endfunction()

bellows_require(JANSSON jansson libjansson-dev)
bellows_require(MHD libmicrohttpd libmicrohttpd-dev)
bellows_require(CMOCKA cmocka libcmocka-dev)
bellows_require(EDIT libedit libedit-dev)
bellows_require(CURL libcurl libcurl4-openssl-dev)

find_program(BELLOWS_CCACHE ccache)
if(BELLOWS_CCACHE)
  set(CMAKE_C_COMPILER_LAUNCHER "${BELLOWS_CCACHE}")
  set(CMAKE_CXX_COMPILER_LAUNCHER "${BELLOWS_CCACHE}")
else()
  message(STATUS "bellows: ccache not found (Debian package `ccache`); rebuilds of llama.cpp will be slow")
endif()
