# herald_require_package(<Package> "<debian packages>" <who needs it> [find_package args])
#   find_package(<Package>) that fails the configure with the packages to
#   install, instead of CMake's generic "could not find" message.
macro(herald_require_package package debian who)
  find_package(${package} ${ARGN} QUIET)
  if(NOT ${package}_FOUND)
    message(FATAL_ERROR "${who} needs ${package}, which was not found. "
      "Install it (Debian: apt-get install ${debian}; or scripts/install-deps.sh), "
      "or turn off what needs it.")
  endif()
endmacro()

# herald_require_pkg_config(<PREFIX> <module> "<debian packages>" <option>)
#   pkg_check_modules(<PREFIX> IMPORTED_TARGET <module>) for the component
#   enabled by <option>; its absence is a configure error naming the package
#   and the option that turns the component off.
macro(herald_require_pkg_config prefix module debian option)
  find_package(PkgConfig QUIET)
  if(NOT PkgConfig_FOUND)
    message(FATAL_ERROR "${option}=ON needs pkg-config to find ${module}. "
      "Install it (Debian: apt-get install pkg-config), or set -D${option}=OFF.")
  endif()
  pkg_check_modules(${prefix} QUIET IMPORTED_TARGET ${module})
  if(NOT ${prefix}_FOUND)
    message(FATAL_ERROR "${option}=ON needs ${module}, which pkg-config did not find. "
      "Install it (Debian: apt-get install ${debian}; or scripts/install-deps.sh), or set -D${option}=OFF.")
  endif()
endmacro()

# herald_add_component(<dir> <option>)
#   add_subdirectory(<dir>) when <option> is ON (or is the word ON). An
#   enabled component missing from the source tree is a configure error, not
#   a silent skip.
function(herald_add_component dir option)
  if(NOT ${option})
    return()
  endif()
  if(NOT EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/${dir}/CMakeLists.txt)
    message(FATAL_ERROR "${dir}/CMakeLists.txt is missing from the source tree, but ${option} is ON. "
      "Restore the directory, or set -D${option}=OFF.")
  endif()
  add_subdirectory(${dir})
endfunction()

# herald_cc_library(NAME core SRCS ... DEPS ... [PRIVATE_DEPS ...])
#   Makes the target herald_<NAME> with the alias herald::<NAME>. With
#   HERALD_INSTALL it is installed and exported as herald::<NAME> in its own
#   export set (herald-<NAME>-targets.cmake), so find_package(herald
#   COMPONENTS <NAME>) loads it alone. Public headers live in
#   ${CMAKE_CURRENT_SOURCE_DIR}/include and are installed as they are.
function(herald_cc_library)
  cmake_parse_arguments(ARG "" "NAME" "SRCS;DEPS;PRIVATE_DEPS" ${ARGN})
  set(target herald_${ARG_NAME})
  add_library(${target} ${ARG_SRCS})
  add_library(herald::${ARG_NAME} ALIAS ${target})
  set_target_properties(${target} PROPERTIES EXPORT_NAME ${ARG_NAME} OUTPUT_NAME herald_${ARG_NAME})
  target_include_directories(${target} PUBLIC
    $<BUILD_INTERFACE:${CMAKE_CURRENT_SOURCE_DIR}/include>
    $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
  target_compile_features(${target} PUBLIC cxx_std_20)
  target_link_libraries(${target} PUBLIC ${ARG_DEPS} PRIVATE ${ARG_PRIVATE_DEPS})
  if(HERALD_INSTALL)
    set_property(GLOBAL APPEND PROPERTY HERALD_COMPONENTS ${ARG_NAME})
    install(TARGETS ${target} EXPORT herald-${ARG_NAME}-targets
      ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
      LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
    if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/include)
      install(DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}/include/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
    endif()
  endif()
endfunction()

# herald_cc_test(NAME foo_test SRCS ... DEPS ... LABELS unit [concurrency] [TIMEOUT s])
#   A gtest binary registered with ctest under the given labels. Labels say what
#   a test needs: unit (nothing), sqlite, postgres, kafka, kafka-mock;
#   `concurrency` marks the tests that also run under ThreadSanitizer.
function(herald_cc_test)
  if(NOT HERALD_BUILD_TESTING)
    return()
  endif()
  cmake_parse_arguments(ARG "" "NAME;TIMEOUT" "SRCS;DEPS;LABELS" ${ARGN})
  add_executable(${ARG_NAME} ${ARG_SRCS})
  target_link_libraries(${ARG_NAME} PRIVATE ${ARG_DEPS} GTest::gmock_main GTest::gmock GTest::gtest)
  if(TARGET herald_test_pch)
    target_precompile_headers(${ARG_NAME} REUSE_FROM herald_test_pch)
  endif()
  add_test(NAME ${ARG_NAME} COMMAND ${ARG_NAME})
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 300)
  endif()
  set_tests_properties(${ARG_NAME} PROPERTIES LABELS "${ARG_LABELS}" TIMEOUT ${ARG_TIMEOUT})
endfunction()

# herald_cc_tests(DIR src DEPS ... LABELS unit [CONCURRENCY name ...])
#   One gtest binary per ${DIR}/*_test.cc, named after the file. Tests named
#   in CONCURRENCY also get the `concurrency` label (run under TSan).
function(herald_cc_tests)
  cmake_parse_arguments(ARG "" "DIR;TIMEOUT" "DEPS;LABELS;CONCURRENCY" ${ARGN})
  file(GLOB test_files CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/${ARG_DIR}/*_test.cc)
  foreach(file ${test_files})
    get_filename_component(name ${file} NAME_WE)
    set(labels ${ARG_LABELS})
    if(name IN_LIST ARG_CONCURRENCY)
      list(APPEND labels concurrency)
    endif()
    herald_cc_test(NAME ${name} SRCS ${file} DEPS ${ARG_DEPS} LABELS ${labels} TIMEOUT ${ARG_TIMEOUT})
  endforeach()
endfunction()

# The library sources of a component: ${DIR}/*.cc except tests (*_test.cc,
# and the ones named by the server they need: *_pgtest.cc, *_kafkatest.cc,
# *_clustertest.cc, *_mocktest.cc).
function(herald_glob_sources out dir)
  file(GLOB files CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/${dir}/*.cc)
  list(FILTER files EXCLUDE REGEX "_(test|pgtest|kafkatest|clustertest|mocktest)\\.cc$")
  set(${out} ${files} PARENT_SCOPE)
endfunction()
