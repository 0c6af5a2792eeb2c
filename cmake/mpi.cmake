# Data-parallel training over MPI (nn/dist.c, nn/ur_dist.h). Off by default: the
# default build needs only libc, libm and OpenMP. On, the libraries link MPI and
# nn/dist.c talks to MPI_COMM_WORLD; off, its functions are one-rank no-ops.
# Included after the library targets exist.
option(UR_MPI "Data-parallel training over MPI (needs e.g. libopenmpi-dev)" OFF)
if(UR_MPI)
  find_package(MPI REQUIRED COMPONENTS C)
  foreach(lib unroll unroll_f64)
    # nn/dist.c is compiled in the object library; both packings link MPI
    target_link_libraries(${lib}_objects PRIVATE MPI::MPI_C)
    target_compile_definitions(${lib}_objects PRIVATE UR_HAVE_MPI)
    target_link_libraries(${lib} PUBLIC MPI::MPI_C)
    target_link_libraries(${lib}_shared PUBLIC MPI::MPI_C)
  endforeach()
endif()
