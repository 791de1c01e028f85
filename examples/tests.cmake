# The training examples, run as tests at a reduced size (included by
# CMakeLists.txt inside its tests section).  Each writes into
# <build>/out/test_<name>; each fails (exit 1) when its own checks fail.
if(NABLA_BUILD_EXAMPLES)
  add_test(NAME example_minimize
           COMMAND minimize --quick --out ${PROJECT_BINARY_DIR}/out/test_minimize
           WORKING_DIRECTORY ${PROJECT_BINARY_DIR})
  add_test(NAME example_regression
           COMMAND regression --quick --out ${PROJECT_BINARY_DIR}/out/test_regression
           WORKING_DIRECTORY ${PROJECT_BINARY_DIR})
  add_test(NAME example_classify2d
           COMMAND classify2d --quick --out ${PROJECT_BINARY_DIR}/out/test_classify2d
           WORKING_DIRECTORY ${PROJECT_BINARY_DIR})
  add_test(NAME example_classify2d_moons_bce
           COMMAND classify2d --quick --data moons --loss bce
                   --out ${PROJECT_BINARY_DIR}/out/test_classify2d_bce
           WORKING_DIRECTORY ${PROJECT_BINARY_DIR})
  # Fashion-MNIST on 2000 training and 500 test images, two epochs; exits 77
  # (skipped) when the data set is not installed, 1 below 70% test accuracy
  # (chance is 10%; this size reaches about 80%).  It also checks that the
  # saved parameters, loaded back, predict identically.
  add_test(NAME example_fashion_mnist
           COMMAND fashion_mnist --epochs 2 --limit 2000 --test-limit 500 --threads 1
                   --min-accuracy 0.7 --out ${PROJECT_BINARY_DIR}/out/test_fashion_mnist
           WORKING_DIRECTORY ${PROJECT_BINARY_DIR})
  # The CNN (--model cnn) at a reduced size: 2000 images, one epoch, which
  # reaches about 70%; below 55% it fails.  Also checks the saved model.
  add_test(NAME example_fashion_mnist_cnn
           COMMAND fashion_mnist --model cnn --epochs 1 --limit 2000 --test-limit 500 --threads 1
                   --min-accuracy 0.55 --out ${PROJECT_BINARY_DIR}/out/test_fashion_mnist_cnn
           WORKING_DIRECTORY ${PROJECT_BINARY_DIR})
  set_tests_properties(example_fashion_mnist example_fashion_mnist_cnn PROPERTIES SKIP_RETURN_CODE 77)
  # Checkpoints survive SIGKILL: a run checkpointing every step is killed at
  # random moments and resumed until done; it must end bit-identical to an
  # uninterrupted run; truncated / foreign checkpoints are refused
  # (tests/fashion_resume.sh; 1500 images, 2 epochs).
  add_test(NAME example_fashion_resume
           COMMAND bash ${PROJECT_SOURCE_DIR}/tests/fashion_resume.sh $<TARGET_FILE:fashion_mnist>
                   ${PROJECT_BINARY_DIR}/out/test_fashion_resume
           WORKING_DIRECTORY ${PROJECT_BINARY_DIR})
  set_tests_properties(example_fashion_resume PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 600)
  set_tests_properties(example_minimize example_regression example_classify2d
                       example_classify2d_moons_bce example_fashion_mnist example_fashion_mnist_cnn
                       PROPERTIES TIMEOUT 300)
endif()
if(NABLA_BUILD_EXAMPLES)
  add_test(NAME example_custom_ops COMMAND custom_ops WORKING_DIRECTORY ${PROJECT_BINARY_DIR})
endif()
