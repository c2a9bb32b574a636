# `conveyor trace` end to end: record a program run, report it (text and JSON), export it for
# Perfetto, and trace `conveyor ingest --trace`. Usage, as a test command:
#   cmake -DCONVEYOR=<conveyor> -DWORK=<scratch dir> -DDATA_DIR=<ingest dataset dir> -P trace_smoke.cmake
file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK})

function(run expect_regex)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE code OUTPUT_VARIABLE out ERROR_VARIABLE out)
  message("$ ${ARGN}\n${out}")
  if(NOT code EQUAL 0)
    message(FATAL_ERROR "exit code ${code}")
  endif()
  if(NOT out MATCHES "${expect_regex}")
    message(FATAL_ERROR "output does not match '${expect_regex}'")
  endif()
  set(last_output "${out}" PARENT_SCOPE)
endfunction()

# Any program linked with Conveyor: here the tool's own demo, on a queue small enough to block.
run("exactly once: yes.*conveyor trace record: .* exited with 0; [0-9]+ events from [0-9]+ threads"
  ${CONVEYOR} trace record -o ${WORK}/demo.trace -- ${CONVEYOR} demo --items 20000 --capacity 2)
run("demo [(]fifo_queue, capacity 2.*producers blocked on full .*top stalls:\n  1[.] .* blocked on (full|empty) in queue demo.*threads:.*demo-producer-0"
  ${CONVEYOR} trace report ${WORK}/demo.trace)
run("\"top_stalls\"" ${CONVEYOR} trace report ${WORK}/demo.trace --json --top 3)
string(JSON first_queue GET "${last_output}" queues 0 name)
if(NOT first_queue STREQUAL "demo")
  message(FATAL_ERROR "first queue in the JSON report is '${first_queue}', not 'demo'")
endif()
run("wrote .*demo.html" ${CONVEYOR} trace report ${WORK}/demo.trace --html ${WORK}/demo.html)
file(READ ${WORK}/demo.html page)
if(NOT page MATCHES "<svg .*<polyline.*Top stalls.*demo-producer-0")
  message(FATAL_ERROR "the HTML report lacks the occupancy plot or the stalls")
endif()
run("demo.trace.json" ${CONVEYOR} trace export ${WORK}/demo.trace --format perfetto)
file(READ ${WORK}/demo.trace.json exported)
string(JSON n LENGTH "${exported}" traceEvents)
if(n LESS 10)
  message(FATAL_ERROR "the export holds ${n} events")
endif()

# conveyor ingest --trace: runner op spans and the filename queue appear.
run("ingest: trace written to .*events from"
  ${CONVEYOR} ingest --data-dir ${DATA_DIR} --epochs 1 --no-progress --trace ${WORK}/ingest.trace)
run("string_input_producer/fifo_queue [(]fifo_queue.*QueueRunnerThread"
  ${CONVEYOR} trace report ${WORK}/ingest.trace)
if(NOT last_output MATCHES "random_shuffle_queue [(]shuffle_queue, capacity [0-9]+")
  message(FATAL_ERROR "the ingest report does not show the shuffle queue")
endif()
file(REMOVE_RECURSE ${WORK})
