# Install rules: headers under include/unroll/ (the source layout, so their relative
# includes keep working, plus unroll/unroll.h, the one to include), the static and
# shared libraries of both precisions, a CMake package (find_package(unroll) gives
# unroll::unroll and unroll::unroll_f64) and pkg-config files (unroll, unroll_f64).
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(UR_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/unroll)

foreach(header ${UR_PUBLIC_HEADERS})
  get_filename_component(dir ${header} DIRECTORY)
  install(FILES ${PROJECT_SOURCE_DIR}/${header} DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/unroll/${dir})
endforeach()
install(FILES ${PROJECT_SOURCE_DIR}/cmake/unroll.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/unroll)
# ur_ops.h makes the enum of op kinds from the op list
install(FILES ${PROJECT_SOURCE_DIR}/autograd/ur_ops.def DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/unroll/autograd)

install(TARGETS unroll unroll_f64 unroll_shared unroll_f64_shared EXPORT unrollTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(EXPORT unrollTargets NAMESPACE unroll:: DESTINATION ${UR_INSTALL_CMAKEDIR})

configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/unrollConfig.cmake.in
  ${PROJECT_BINARY_DIR}/unrollConfig.cmake INSTALL_DESTINATION ${UR_INSTALL_CMAKEDIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/unrollConfigVersion.cmake
  COMPATIBILITY SameMajorVersion)
install(FILES ${PROJECT_BINARY_DIR}/unrollConfig.cmake ${PROJECT_BINARY_DIR}/unrollConfigVersion.cmake
  DESTINATION ${UR_INSTALL_CMAKEDIR})

# pkg-config: the prefix is found from the .pc file's own place, so the installed
# tree can be moved (and installed with cmake --install --prefix).
file(RELATIVE_PATH UR_PC_TO_PREFIX /${CMAKE_INSTALL_LIBDIR}/pkgconfig /)
string(REGEX REPLACE "/$" "" UR_PC_TO_PREFIX "${UR_PC_TO_PREFIX}")
set(UR_PC_OPENMP ${OpenMP_C_FLAGS})
foreach(lib unroll unroll_f64)
  if(lib STREQUAL "unroll_f64")
    set(UR_PC_NAME "unroll (double precision)")
    set(UR_PC_CFLAGS "-DUR_DOUBLE")
  else()
    set(UR_PC_NAME "unroll")
    set(UR_PC_CFLAGS "")
  endif()
  set(UR_PC_LIB ${lib})
  configure_file(${PROJECT_SOURCE_DIR}/cmake/unroll.pc.in ${PROJECT_BINARY_DIR}/${lib}.pc @ONLY)
  install(FILES ${PROJECT_BINARY_DIR}/${lib}.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
endforeach()
