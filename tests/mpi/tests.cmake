# The MPI tests: each tests/mpi/mpi_*.c is one program, run by ctest with
# mpirun -np 2 on this machine only (loopback; --oversubscribe lets 2 ranks
# run on fewer cores; --allow-run-as-root for CI, which runs as root).
# Included by CMakeLists.txt when MPI was found.
# Under the sanitizers, LeakSanitizer is off for these tests only: Open MPI's
# plugins, unloaded at MPI_Finalize, leave allocations whose stacks cannot
# be symbolised (so not even suppressed by module).  ASan and UBSan still
# check them; nabla's own code on these paths (checkpoints, the optimizers,
# the example's single-process runs) is leak-checked by the other tests.
file(GLOB mpi_test_srcs CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/tests/mpi/mpi_*.c)
set(NABLA_MPIRUN ${NABLA_MPIEXEC} --allow-run-as-root --oversubscribe
    --mca btl self,vader --mca btl_vader_single_copy_mechanism none -np 2)
foreach(src ${mpi_test_srcs})
  get_filename_component(name ${src} NAME_WE)
  add_executable(${name} ${src} ${PROJECT_SOURCE_DIR}/tests/check.h)
  target_link_libraries(${name} PRIVATE nabla_static)
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/src ${PROJECT_SOURCE_DIR}/tests)
  target_compile_options(${name} PRIVATE ${NABLA_WARN})
  target_compile_definitions(${name} PRIVATE _POSIX_C_SOURCE=200809L
    NABLA_SOURCE_DIR="${PROJECT_SOURCE_DIR}" NABLA_BINARY_DIR="${PROJECT_BINARY_DIR}")
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/tests)
  add_test(NAME ${name} COMMAND ${NABLA_MPIRUN} $<TARGET_FILE:${name}>
           WORKING_DIRECTORY ${PROJECT_BINARY_DIR})
  set_tests_properties(${name} PROPERTIES TIMEOUT 300
    ENVIRONMENT "LSAN_OPTIONS=detect_leaks=0")
endforeach()
# mpi_dist once more on 3 ranks: the sharded step's ring reduce-scatter with
# more than one hop, and shares of unequal size
if(TARGET mpi_dist)
  list(REMOVE_AT NABLA_MPIRUN -1)
  add_test(NAME mpi_dist_3ranks COMMAND ${NABLA_MPIRUN} 3 $<TARGET_FILE:mpi_dist>
           WORKING_DIRECTORY ${PROJECT_BINARY_DIR})
  list(APPEND NABLA_MPIRUN 2)
  set_tests_properties(mpi_dist_3ranks PROPERTIES TIMEOUT 300
    ENVIRONMENT "LSAN_OPTIONS=detect_leaks=0")
endif()

# The main job under mpirun -np 2: equal to the single process (1e-12
# relative, same accuracy), a rank killed at a random step stops the job
# within 30 s, and the run resumes from the checkpoint (tests/fashion_resume.sh).
if(NABLA_BUILD_EXAMPLES)
  add_test(NAME mpi_fashion_resume
           COMMAND bash ${PROJECT_SOURCE_DIR}/tests/fashion_resume.sh $<TARGET_FILE:fashion_mnist>
                   ${PROJECT_BINARY_DIR}/out/test_mpi_fashion_resume ${NABLA_MPIRUN}
           WORKING_DIRECTORY ${PROJECT_BINARY_DIR})
  set_tests_properties(mpi_fashion_resume PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 600
    ENVIRONMENT "LSAN_OPTIONS=detect_leaks=0")
endif()
