# rosettaBackends.cmake
# ---------------------
# Creates rosetta's optional BLAS backend targets. Used twice, so that the build
# tree and an installed package define the targets identically:
#   * by the top-level CMakeLists.txt  (MODE BUILD):    rosetta_<name> + ALIAS rosetta::<name>
#   * by rosettaConfig.cmake           (MODE IMPORTED): rosetta::<name> INTERFACE IMPORTED
# Either way the dependencies are searched on the machine doing the configure, so
# e.g. ROSETTA_CBLAS_LIBRARY always names the consumer's own OpenBLAS file.
#
#   rosetta_setup_backends(MODE <BUILD|IMPORTED>
#                          [WITH_EIGEN <bool>] [WITH_BLIS <bool>] [WITH_CBLAS <bool>]
#                          [WITH_HWY <bool>] [REQUIRE_ALL] [QUIET])
#
# Targets (each INTERFACE, each links rosetta::rosetta):
#   rosetta::eigen  Eigen3::Eigen,             ROSETTA_HAS_EIGEN=1
#   rosetta::blis   BLIS library + <blis.h>,   ROSETTA_HAS_BLIS=1
#   rosetta::cblas  OpenBLAS + <cblas.h> + dl, ROSETTA_HAS_CBLAS=1,
#                   ROSETTA_CBLAS_LIBRARY="<real path of the OpenBLAS shared object>"
#   rosetta::hwy    Google Highway (hwy::hwy), ROSETTA_HAS_HWY=1, HWY_WANT_AVX3_DL=1: the SIMD
#                   backend of the kernel atlas (include/rosetta/atlas/) and of backend::HwyGemm,
#                   a gemm that backend::Auto can route to (not a Policy backend of its own:
#                   not in backend::Available).
#   rosetta::all    every backend above that was found (always created). Highway is in it so
#                   that ROSETTA_HAS_HWY, which decides Auto's routing targets, is the same in
#                   every translation unit that includes backend/auto.hpp.
#
# Results in the caller's scope:
#   ROSETTA_BACKENDS_FOUND     list of backend names that were created
#   ROSETTA_BACKENDS_MISSING   requested but not found
#   ROSETTA_BACKENDS_DISABLED  switched off by WITH_<NAME> OFF
#   ROSETTA_BACKEND_<NAME>_INFO  one-line description (library paths) per backend
#
# REQUIRE_ALL turns a requested-but-missing backend into a FATAL_ERROR.

# Creates (or reports an existing) backend target; <out> receives the name to configure
# or "" if the target already exists (e.g. a second find_package(rosetta) call).
function(_rosetta_make_backend_target mode name out)
  if(mode STREQUAL "BUILD")
    add_library(rosetta_${name} INTERFACE)
    add_library(rosetta::${name} ALIAS rosetta_${name})
    set(${out} rosetta_${name} PARENT_SCOPE)
  elseif(TARGET rosetta::${name})
    set(${out} "" PARENT_SCOPE)
  else()
    add_library(rosetta::${name} INTERFACE IMPORTED)
    set(${out} rosetta::${name} PARENT_SCOPE)
  endif()
endfunction()

function(rosetta_setup_backends)
  cmake_parse_arguments(PARSE_ARGV 0 ARG "REQUIRE_ALL;QUIET" "MODE;WITH_EIGEN;WITH_BLIS;WITH_CBLAS;WITH_HWY" "")
  if(NOT ARG_MODE MATCHES "^(BUILD|IMPORTED)$")
    message(FATAL_ERROR "rosetta_setup_backends: MODE must be BUILD or IMPORTED")
  endif()
  foreach(_b IN ITEMS EIGEN BLIS CBLAS HWY)
    if(NOT DEFINED ARG_WITH_${_b})
      set(ARG_WITH_${_b} ON)
    endif()
  endforeach()
  if(NOT TARGET rosetta::rosetta)
    message(FATAL_ERROR "rosetta_setup_backends: target rosetta::rosetta must exist first")
  endif()

  # Our find modules live next to this file (source tree cmake/ or the install dir).
  list(PREPEND CMAKE_MODULE_PATH "${CMAKE_CURRENT_FUNCTION_LIST_DIR}")

  set(_found "")
  set(_missing "")
  set(_disabled "")

  # --- Eigen ----------------------------------------------------------------------
  if(NOT ARG_WITH_EIGEN)
    list(APPEND _disabled eigen)
  else()
    if(NOT TARGET Eigen3::Eigen)
      find_package(Eigen3 3.3 CONFIG QUIET)
    endif()
    if(TARGET Eigen3::Eigen)
      _rosetta_make_backend_target(${ARG_MODE} eigen _tgt)
      if(_tgt)
        target_link_libraries(${_tgt} INTERFACE rosetta::rosetta Eigen3::Eigen)
        target_compile_definitions(${_tgt} INTERFACE ROSETTA_HAS_EIGEN=1)
      endif()
      get_target_property(_inc Eigen3::Eigen INTERFACE_INCLUDE_DIRECTORIES)
      set(_info "Eigen3")
      if(EIGEN3_VERSION_STRING)
        string(APPEND _info " ${EIGEN3_VERSION_STRING}")
      endif()
      set(ROSETTA_BACKEND_EIGEN_INFO "${_info} (headers: ${_inc})" PARENT_SCOPE)
      list(APPEND _found eigen)
    else()
      list(APPEND _missing eigen)
      set(ROSETTA_BACKEND_EIGEN_INFO "Eigen3 >= 3.3 not found (Debian: libeigen3-dev)" PARENT_SCOPE)
    endif()
  endif()

  # --- BLIS -----------------------------------------------------------------------
  if(NOT ARG_WITH_BLIS)
    list(APPEND _disabled blis)
  else()
    if(NOT TARGET RosettaBLIS::BLIS)
      find_package(RosettaBLIS MODULE QUIET)
    endif()
    if(TARGET RosettaBLIS::BLIS)
      _rosetta_make_backend_target(${ARG_MODE} blis _tgt)
      if(_tgt)
        target_link_libraries(${_tgt} INTERFACE rosetta::rosetta RosettaBLIS::BLIS)
        target_compile_definitions(${_tgt} INTERFACE ROSETTA_HAS_BLIS=1)
      endif()
      get_target_property(_lib RosettaBLIS::BLIS IMPORTED_LOCATION)
      file(REAL_PATH "${_lib}" _real)
      set(ROSETTA_BACKEND_BLIS_INFO "BLIS ${_lib} -> ${_real}" PARENT_SCOPE)
      list(APPEND _found blis)
    else()
      list(APPEND _missing blis)
      set(ROSETTA_BACKEND_BLIS_INFO "BLIS not found (Debian: libblis-dev; hint: RosettaBLIS_ROOT)" PARENT_SCOPE)
    endif()
  endif()

  # --- CBLAS (OpenBLAS) -----------------------------------------------------------
  if(NOT ARG_WITH_CBLAS)
    list(APPEND _disabled cblas)
  else()
    if(NOT TARGET RosettaOpenBLAS::OpenBLAS)
      find_package(RosettaOpenBLAS MODULE QUIET)
    endif()
    if(TARGET RosettaOpenBLAS::OpenBLAS)
      get_target_property(_lib RosettaOpenBLAS::OpenBLAS IMPORTED_LOCATION)
      file(REAL_PATH "${_lib}" _real)
      _rosetta_make_backend_target(${ARG_MODE} cblas _tgt)
      if(_tgt)
        # The backend dlopen()s exactly this file and dlsym()s cblas_?gemm from it, so
        # calls reach OpenBLAS even when libblis (which also exports cblas_*) is linked.
        target_link_libraries(${_tgt} INTERFACE rosetta::rosetta RosettaOpenBLAS::OpenBLAS
                                                ${CMAKE_DL_LIBS})
        target_compile_definitions(${_tgt} INTERFACE
          ROSETTA_HAS_CBLAS=1 "ROSETTA_CBLAS_LIBRARY=\"${_real}\"")
      endif()
      set(_info "OpenBLAS")
      if(RosettaOpenBLAS_VERSION)
        string(APPEND _info " ${RosettaOpenBLAS_VERSION}")
      endif()
      set(ROSETTA_BACKEND_CBLAS_INFO "${_info} ${_lib} -> ${_real} (dlopen'ed)" PARENT_SCOPE)
      list(APPEND _found cblas)
    else()
      list(APPEND _missing cblas)
      set(ROSETTA_BACKEND_CBLAS_INFO "OpenBLAS not found (Debian: libopenblas-dev; hint: RosettaOpenBLAS_ROOT)" PARENT_SCOPE)
    endif()
  endif()

  # --- Highway (SIMD backend of the kernel atlas) ----------------------------------
  if(NOT ARG_WITH_HWY)
    list(APPEND _disabled hwy)
  else()
    if(NOT TARGET hwy::hwy)
      find_package(hwy 1.0 CONFIG QUIET)  # Debian: libhwy-dev ships hwy-config.cmake
    endif()
    if(TARGET hwy::hwy)
      _rosetta_make_backend_target(${ARG_MODE} hwy _tgt)
      if(_tgt)
        # Highway 1.0.x refuses to configure itself (#error "best baseline should be
        # included in dynamic targets") when -march enables AVX3_DL (e.g. -march=native on an
        # Ice Lake / Zen 4 class CPU) unless AVX3_DL is also wanted for dynamic dispatch.
        target_link_libraries(${_tgt} INTERFACE rosetta::rosetta hwy::hwy)
        target_compile_definitions(${_tgt} INTERFACE ROSETTA_HAS_HWY=1 HWY_WANT_AVX3_DL=1)
      endif()
      get_target_property(_inc hwy::hwy INTERFACE_INCLUDE_DIRECTORIES)
      set(_info "Highway")
      if(hwy_VERSION)
        string(APPEND _info " ${hwy_VERSION}")
      endif()
      set(ROSETTA_BACKEND_HWY_INFO "${_info} (headers: ${_inc}; atlas + backend::Auto's hwy gemm)"
          PARENT_SCOPE)
      list(APPEND _found hwy)
    else()
      list(APPEND _missing hwy)
      set(ROSETTA_BACKEND_HWY_INFO "Highway >= 1.0 not found (Debian: libhwy-dev)" PARENT_SCOPE)
    endif()
  endif()

  # --- rosetta::all (every backend found, Highway included) ---------------------------
  _rosetta_make_backend_target(${ARG_MODE} all _tgt)
  if(_tgt)
    target_link_libraries(${_tgt} INTERFACE rosetta::rosetta)
    foreach(_b IN LISTS _found)
      target_link_libraries(${_tgt} INTERFACE rosetta::${_b})
    endforeach()
  endif()

  if(ARG_REQUIRE_ALL AND _missing)
    list(JOIN _missing ", " _m)
    message(FATAL_ERROR
      "rosetta: required backend(s) not found: ${_m} (ROSETTA_REQUIRE_ALL_BACKENDS is ON). "
      "Run scripts/install-deps.sh, or switch a backend off with -DROSETTA_WITH_<NAME>=OFF.")
  endif()
  if(NOT ARG_QUIET)
    foreach(_b IN LISTS _missing)
      string(TOUPPER "${_b}" _B)
      message(WARNING "rosetta: backend '${_b}' requested (ROSETTA_WITH_${_B}=ON) but not found; "
                      "skipping it. Install it (scripts/install-deps.sh) or set ROSETTA_WITH_${_B}=OFF.")
    endforeach()
  endif()

  set(ROSETTA_BACKENDS_FOUND "${_found}" PARENT_SCOPE)
  set(ROSETTA_BACKENDS_MISSING "${_missing}" PARENT_SCOPE)
  set(ROSETTA_BACKENDS_DISABLED "${_disabled}" PARENT_SCOPE)
endfunction()

# Prints the summary produced by rosetta_setup_backends() (call in the same scope).
function(rosetta_print_backend_summary)
  message(STATUS "rosetta ${PROJECT_VERSION} backends:")
  foreach(_b IN ITEMS eigen blis cblas hwy)
    string(TOUPPER "${_b}" _B)
    if(_b IN_LIST ROSETTA_BACKENDS_FOUND)
      set(_state "found   ")
    elseif(_b IN_LIST ROSETTA_BACKENDS_DISABLED)
      set(_state "disabled")
      set(ROSETTA_BACKEND_${_B}_INFO "ROSETTA_WITH_${_B}=OFF")
    else()
      set(_state "MISSING ")
    endif()
    string(SUBSTRING "${_b}     " 0 5 _pad)
    message(STATUS "  rosetta::${_pad} ${_state} ${ROSETTA_BACKEND_${_B}_INFO}")
  endforeach()
endfunction()
