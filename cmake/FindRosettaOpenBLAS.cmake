# FindRosettaOpenBLAS.cmake
# -------------------------
# Locates OpenBLAS (its CBLAS interface) for rosetta. Installed next to
# rosettaConfig.cmake and used on the consumer side too.
#
# Only OpenBLAS's own library file (libopenblas*) is accepted, never the generic
# libblas.so / libcblas.so: on Debian those are alternatives symlinks that may point
# at BLIS or the reference BLAS. The header directory must contain
# openblas_config.h next to cblas.h, so BLIS's cblas.h can never be picked up.
#
# Result variables
#   RosettaOpenBLAS_FOUND         TRUE if header and library were found
#   RosettaOpenBLAS_INCLUDE_DIR   directory with OpenBLAS's cblas.h (cache)
#   RosettaOpenBLAS_LIBRARY       the OpenBLAS library to link (cache)
#   RosettaOpenBLAS_REAL_LIBRARY  RosettaOpenBLAS_LIBRARY with all symlinks resolved;
#                                 rosetta dlopen()s exactly this file
#   RosettaOpenBLAS_VERSION       version parsed from openblas_config.h
#
# Imported target
#   RosettaOpenBLAS::OpenBLAS
#
# OpenBLAS must be a shared library (rosetta dlopen()s it); a static archive is rejected.
#
# Hints: RosettaOpenBLAS_ROOT (variable or environment), CMAKE_PREFIX_PATH.

include(FindPackageHandleStandardArgs)

find_library(RosettaOpenBLAS_LIBRARY
  NAMES openblas openblasp openblaso
  PATH_SUFFIXES openblas-pthread openblas-openmp openblas-serial
  DOC "OpenBLAS library (never the generic libblas)")

set(RosettaOpenBLAS_REAL_LIBRARY "")
set(_rosetta_openblas_suffixes openblas-pthread openblas-openmp openblas-serial openblas)
if(RosettaOpenBLAS_LIBRARY)
  file(REAL_PATH "${RosettaOpenBLAS_LIBRARY}" RosettaOpenBLAS_REAL_LIBRARY)
  # Prefer the header variant that matches the library variant (Debian layout:
  # lib/<multiarch>/openblas-pthread/ <-> include/<multiarch>/openblas-pthread/).
  get_filename_component(_rosetta_openblas_variant "${RosettaOpenBLAS_REAL_LIBRARY}" DIRECTORY)
  get_filename_component(_rosetta_openblas_variant "${_rosetta_openblas_variant}" NAME)
  if(_rosetta_openblas_variant MATCHES "^openblas")
    list(PREPEND _rosetta_openblas_suffixes "${_rosetta_openblas_variant}")
  endif()
  unset(_rosetta_openblas_variant)
endif()

find_path(RosettaOpenBLAS_INCLUDE_DIR
  NAMES openblas_config.h
  PATH_SUFFIXES ${_rosetta_openblas_suffixes}
  DOC "Directory containing OpenBLAS's cblas.h and openblas_config.h")
unset(_rosetta_openblas_suffixes)

mark_as_advanced(RosettaOpenBLAS_INCLUDE_DIR RosettaOpenBLAS_LIBRARY)

set(RosettaOpenBLAS_VERSION "")
if(RosettaOpenBLAS_INCLUDE_DIR AND EXISTS "${RosettaOpenBLAS_INCLUDE_DIR}/openblas_config.h")
  file(STRINGS "${RosettaOpenBLAS_INCLUDE_DIR}/openblas_config.h" _rosetta_openblas_ver
    REGEX "#define[ \t]+OPENBLAS_VERSION")
  if(_rosetta_openblas_ver MATCHES "([0-9]+\\.[0-9]+(\\.[0-9]+)?)")
    set(RosettaOpenBLAS_VERSION "${CMAKE_MATCH_1}")
  endif()
  unset(_rosetta_openblas_ver)
endif()

# rosetta dlopen()s the library, so it must be a shared object.
set(RosettaOpenBLAS_IS_SHARED_LIBRARY "")
if(RosettaOpenBLAS_REAL_LIBRARY MATCHES "\\.(so(\\.[0-9.]+)?|dylib)$")
  set(RosettaOpenBLAS_IS_SHARED_LIBRARY TRUE)
endif()

set(RosettaOpenBLAS_HAS_CBLAS_H "")
if(RosettaOpenBLAS_INCLUDE_DIR AND EXISTS "${RosettaOpenBLAS_INCLUDE_DIR}/cblas.h")
  set(RosettaOpenBLAS_HAS_CBLAS_H TRUE)
endif()

find_package_handle_standard_args(RosettaOpenBLAS
  REQUIRED_VARS RosettaOpenBLAS_LIBRARY RosettaOpenBLAS_REAL_LIBRARY
                RosettaOpenBLAS_INCLUDE_DIR RosettaOpenBLAS_HAS_CBLAS_H RosettaOpenBLAS_IS_SHARED_LIBRARY
  VERSION_VAR RosettaOpenBLAS_VERSION)
unset(RosettaOpenBLAS_HAS_CBLAS_H)
unset(RosettaOpenBLAS_IS_SHARED_LIBRARY)

if(RosettaOpenBLAS_FOUND AND NOT TARGET RosettaOpenBLAS::OpenBLAS)
  add_library(RosettaOpenBLAS::OpenBLAS UNKNOWN IMPORTED)
  set_target_properties(RosettaOpenBLAS::OpenBLAS PROPERTIES
    IMPORTED_LOCATION "${RosettaOpenBLAS_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${RosettaOpenBLAS_INCLUDE_DIR}")
endif()
