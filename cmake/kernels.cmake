# cmake/kernels.cmake - the numeric kernels (tensor/kernels/*.c), compiled once per
# instruction set so that one build runs on any CPU of its architecture and uses
# the best kernels this CPU has (tensor/dispatch.c chooses at run time).
#
#   include(cmake/kernels.cmake)        before the library targets are created
#   ur_add_kernels(<target> float|double)  adds the kernel objects to a target
#   ur_add_kernel_path_tests()          in tests/: the kernel tests once per path
#
# On x86 the sets are avx512, avx2 and portable (the baseline of the target, e.g.
# SSE2 on x86-64); elsewhere, or with UR_PORTABLE_ONLY=ON, only portable. UR_NATIVE=ON compiles everything with
# -march=native and the kernels once, for this machine only (no run-time choice).
include_guard(GLOBAL)
include(CheckCCompilerFlag)

option(UR_PORTABLE_ONLY "Only the portable kernels, as on a machine other than x86" OFF)

set(UR_KERNEL_DIR ${CMAKE_CURRENT_LIST_DIR}/../tensor/kernels)
get_filename_component(UR_KERNEL_DIR ${UR_KERNEL_DIR} ABSOLUTE)
set(UR_KERNEL_SOURCES ${UR_KERNEL_DIR}/gemm_kernel.c ${UR_KERNEL_DIR}/gemm_pack.c
  ${UR_KERNEL_DIR}/gemm_rect.c ${UR_KERNEL_DIR}/vec_simd.c ${UR_KERNEL_DIR}/table.c)

set(UR_KERNEL_FLAGS_portable "")
set(UR_KERNEL_FLAGS_avx2 -mavx2 -mfma)
set(UR_KERNEL_FLAGS_avx512 -mavx512f -mavx512vl -mavx512bw -mavx512dq -mavx2 -mfma)

set(UR_KERNEL_SETS portable)
if(UR_NATIVE)
  check_c_compiler_flag(-march=native UR_HAS_MARCH_NATIVE)
  if(UR_HAS_MARCH_NATIVE)
    add_compile_options(-march=native)
  endif()
  set(UR_KERNEL_SETS native)
  set(UR_KERNEL_FLAGS_native "")
  add_compile_definitions(UR_KERNELS_NATIVE)
elseif(NOT UR_PORTABLE_ONLY AND CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64|i[3-6]86|x86)$")
  check_c_compiler_flag("-mavx512f -mavx512vl -mavx512bw -mavx512dq" UR_HAS_AVX512_FLAGS)
  if(UR_HAS_AVX512_FLAGS)
    list(PREPEND UR_KERNEL_SETS avx512 avx2)
    add_compile_definitions(UR_KERNELS_X86)
  endif()
endif()

# The AVX512-BF16 tiles of ur_gemm_bf16: one object, float library only, next to
# the avx512 set (tensor/dispatch.c uses it when that set runs and the CPU has
# AVX512-BF16). UR_KERNELS_BF16 says the build has it.
if("avx512" IN_LIST UR_KERNEL_SETS)
  check_c_compiler_flag("-mavx512f -mavx512bf16" UR_HAS_AVX512BF16_FLAGS)
  if(UR_HAS_AVX512BF16_FLAGS)
    add_library(ur_kernels_avx512bf16 OBJECT ${UR_KERNEL_DIR}/gemm_bf16_avx512.c)
    target_include_directories(ur_kernels_avx512bf16 PRIVATE ${UR_KERNEL_DIR}/..)
    target_compile_options(ur_kernels_avx512bf16 PRIVATE ${UR_KERNEL_FLAGS_avx512} -mavx512bf16)
    target_compile_definitions(ur_kernels_avx512bf16 PRIVATE _POSIX_C_SOURCE=200809L)
    set_target_properties(ur_kernels_avx512bf16 PROPERTIES POSITION_INDEPENDENT_CODE ON)
    add_compile_definitions(UR_KERNELS_BF16)
    # The AMX tiles beside them (tensor/dispatch.c prefers them where the CPU has
    # AMX-BF16), and for the tests the same file with the tile instructions carried
    # out in C (UR_AMX_EMULATE), which runs on any CPU with AVX-512.
    check_c_compiler_flag("-mamx-tile -mamx-bf16" UR_HAS_AMX_FLAGS)
    if(UR_HAS_AMX_FLAGS AND CMAKE_SIZEOF_VOID_P EQUAL 8) # AMX runs in 64-bit mode only
      add_library(ur_kernels_amx OBJECT ${UR_KERNEL_DIR}/gemm_bf16_amx.c)
      target_compile_options(ur_kernels_amx PRIVATE ${UR_KERNEL_FLAGS_avx512} -mamx-tile -mamx-bf16)
      add_compile_definitions(UR_KERNELS_AMX)
    endif()
    add_library(ur_kernels_amx_emulated OBJECT ${UR_KERNEL_DIR}/gemm_bf16_amx.c)
    target_compile_options(ur_kernels_amx_emulated PRIVATE ${UR_KERNEL_FLAGS_avx512})
    target_compile_definitions(ur_kernels_amx_emulated PRIVATE UR_AMX_EMULATE)
    foreach(lib ur_kernels_amx ur_kernels_amx_emulated)
      if(TARGET ${lib})
        target_include_directories(${lib} PRIVATE ${UR_KERNEL_DIR}/..)
        target_compile_definitions(${lib} PRIVATE _POSIX_C_SOURCE=200809L)
        set_target_properties(${lib} PROPERTIES POSITION_INDEPENDENT_CODE ON)
      endif()
    endforeach()
  endif()
endif()

# One object library per set and precision, e.g. ur_kernels_avx2_double.
foreach(set ${UR_KERNEL_SETS})
  foreach(prec float double)
    set(lib ur_kernels_${set}_${prec})
    add_library(${lib} OBJECT ${UR_KERNEL_SOURCES})
    target_include_directories(${lib} PRIVATE ${UR_KERNEL_DIR}/..)
    target_compile_options(${lib} PRIVATE ${UR_KERNEL_FLAGS_${set}})
    target_compile_definitions(${lib} PRIVATE UR_ISA=${set} _POSIX_C_SOURCE=200809L)
    if(prec STREQUAL "double")
      target_compile_definitions(${lib} PRIVATE UR_DOUBLE)
    endif()
    # the objects may go into a shared library too
    set_target_properties(${lib} PROPERTIES POSITION_INDEPENDENT_CODE ON)
  endforeach()
endforeach()

function(ur_add_kernels target prec)
  foreach(set ${UR_KERNEL_SETS})
    target_sources(${target} PRIVATE $<TARGET_OBJECTS:ur_kernels_${set}_${prec}>)
  endforeach()
  if(prec STREQUAL "float" AND TARGET ur_kernels_avx512bf16)
    target_sources(${target} PRIVATE $<TARGET_OBJECTS:ur_kernels_avx512bf16>)
  endif()
  if(prec STREQUAL "float" AND TARGET ur_kernels_amx)
    target_sources(${target} PRIVATE $<TARGET_OBJECTS:ur_kernels_amx>)
  endif()
endfunction()

# test_kernels and test_f64_kernels once more per kernel path, with UR_KERNELS set
# (on a CPU without that path they check the refusal and skip); test_bf16 too.
function(ur_add_kernel_path_tests)
  if(UR_NATIVE)
    return()
  endif()
  foreach(set ${UR_KERNEL_SETS})
    foreach(t test_kernels test_f64_kernels test_bf16)
      if(TARGET ${t})
        add_test(NAME ${t}_${set} COMMAND ${t} --jobs 1)
        set_tests_properties(${t}_${set} PROPERTIES ENVIRONMENT "UR_KERNELS=${set}")
      endif()
    endforeach()
  endforeach()
endfunction()
