# Runs KUMO with ARGS (a ;-list) and writes its standard output to OUT: the man page and the shell
# completions come from the built binary's own command-line definition.
get_filename_component(dir "${OUT}" DIRECTORY)
file(MAKE_DIRECTORY "${dir}")
execute_process(COMMAND "${KUMO}" ${ARGS} OUTPUT_FILE "${OUT}.tmp" RESULT_VARIABLE failed)
if(failed)
  file(REMOVE "${OUT}.tmp")
  message(FATAL_ERROR "${KUMO} ${ARGS} failed (${failed})")
endif()
file(RENAME "${OUT}.tmp" "${OUT}")
