# ruff: noqa: E501 - the docstring is the list itself, one file::test per line (read by listed() below)
"""Known mutations, and the tests that catch them (issue 7).

Each line is a deliberate bug that was applied by hand to the code, and the tests that then failed. Rerun
them after changing the code they name: apply the bug, run the tests, see them fail, revert.

- service/programs/watchdog.py, the watchdog ignoring its delay (``next_attempt_at = now``):
    tests/unit/test_watchdog.py::test_fatal_program_is_restarted_after_a_doubling_capped_delay
    tests/system/test_watchdog_stack.py::test_worker_failing_every_start_is_restarted_on_a_capped_doubling_schedule
    tests/system/test_watchdog_stack.py::test_gateway_killed_five_times_inside_its_startsecs_serves_again
- service/programs/watchdog.py, the watchdog's cap removed (``next_delay * 2`` without ``min``):
    tests/unit/test_watchdog.py::test_fatal_program_is_restarted_after_a_doubling_capped_delay
    tests/system/test_watchdog_stack.py::test_worker_failing_every_start_is_restarted_on_a_capped_doubling_schedule
- service/programs/watchdog.py, the watchdog restarting a program the operator stopped or started:
    tests/unit/test_watchdog.py::test_a_program_the_operator_stopped_or_started_is_left_alone
    tests/system/test_watchdog_stack.py::test_a_worker_the_operator_stopped_is_not_restarted
- service/runtime/worker_events.py, the event reader not resetting its cursor on a new worker boot:
    tests/system/test_sandbox.py::test_restarts_come_back_connected_without_a_qr
- service/http/views/messages.py, the message body logged at info level:
    tests/system/test_log_secrets.py::test_a_whole_sandbox_flow_at_debug_logs_no_secret
- node_worker/src/journal.js, the fdatasync removed from the append path:
    node_worker/test/durability-contract.test.js::journal: commit() resolves only after its fsync has completed
- node_worker/src/event-journal.js, the long-poll wake removed from push():
    node_worker/test/durability-contract.test.js::event journal: a pushed event wakes a waiting reader at once
- service/logging_setup.py, a record written in two write(2) calls, or not cut to PIPE_BUF:
    tests/app/test_log_contract.py::test_every_record_is_one_write_call
    tests/app/test_log_contract.py::test_concurrent_writers_on_one_pipe_never_merge_or_split_records
- node_worker/src/session/send.js storedMessage (Baileys' getMessage in session/connection.js), returning undefined (retry receipts unanswered after a restart):
    tests/system/test_retry_receipts.py::test_retry_receipt_after_a_worker_kill_is_answered_from_the_durable_store
    node_worker/test/retry-receipts.test.js::a retry receipt that reaches the worker only after its restart is answered from the durable store
- node_worker/src/session/connection.js, the beforeReceiptAck hook (receipt statuses straight from the socket, session/statuses.js onReceiptNode) removed:
    node_worker/test/retry-receipts.test.js::sent and delivered reach the journal promptly right after a reconnect, with the caller's id
- node_worker/patches/*002+durable-before-receipt*, the beforeMessageReceipt hook not called (receipt before durable):
    node_worker/test/durable-receipt.test.js::the receipt for a contact's message goes out only after the message is in the journal on disk
- service/http/views/stream.py, Last-Event-ID ignored (a resumed SSE stream starts from now):
    tests/system/test_event_stream.py::test_sse_resumes_with_last_event_id_and_misses_nothing
- service/runtime/retention.py, pruning events a webhook endpoint has not read; service/store/inbound.py, no dedupe:
    tests/app/test_event_store.py::test_pruning_keeps_what_a_webhook_endpoint_has_not_read_and_never_reuses_a_cursor
    tests/app/test_event_store.py::test_a_repeated_worker_event_is_stored_once
- service/http/middlewares.py, ``scope_allows`` returning True for any ``{account}``:
    tests/app/test_scoped_keys.py::test_a_key_works_on_its_own_account_and_is_403_everywhere_else
- node_worker/src/session/connection.js, no decrypt cache (makeSignalRepository unset): a message decrypted before a crash is lost:
    node_worker/test/durable-receipt.test.js::a worker that dies between decrypting a message and journaling it gets the message again after its restart
- node_worker/src/session/inbound.js, no journaling in the hook (onDecrypted) and ``append`` upserts ignored (onUpsert) (offline messages lost):
    tests/system/test_inbound_chaos.py::test_inbound_200_messages_survive_worker_kills_a_worker_stop_and_a_failing_receiver
- service/store/inbound.py, no dedupe of a repeated hand-over:
    tests/system/test_inbound_chaos.py::test_a_hand_over_repeated_after_a_lost_ack_is_stored_once
- service/store/webhooks.py, fan-out ignoring an account endpoint's account (it gets every account's events):
    tests/app/account_webhooks/test_account_webhook_delivery.py::test_an_account_endpoint_gets_only_its_accounts_events_from_now_on
    tests/app/account_webhooks/test_account_webhook_delivery.py::test_the_same_url_for_two_accounts_and_globally_is_three_independent_endpoints
- service/runtime/accounts.py, every new account on shard 0 (no spreading):
    tests/system/test_shards.py::test_a_killed_shard_takes_down_only_its_accounts_and_loses_no_message
- node_worker/src/decrypt-cache.js, decrypting under the sender's lock instead of the send lock (rc14's race):
    node_worker/test/two-way.test.js::messages both ways on one session at once: every one decrypts on both sides
- service/http/views/context.py, every account routed to default; service/http/middlewares.py, no scope check:
    tests/system/test_accounts.py::test_three_accounts_send_and_receive_concurrently_and_nothing_crosses_between_them
    tests/system/test_accounts.py::test_a_scoped_key_works_only_on_its_account_until_revoked_and_the_admin_key_works_everywhere
- service/http/views/messages.py, a 500 for a long phone number; service/http/middlewares.py, no key needed on one route:
    tests/system/test_fuzz.py::test_every_operation_holds_to_the_document
- service/http/openapi/operations/, a route without its documentation:
    tests/app/test_openapi.py::test_every_registered_route_is_documented_and_nothing_else
- service/runtime/governor.py, the token check removed, through the whole stack:
    tests/system/test_governor_stack.py::test_the_governor_holds_its_rate_over_200_sends_through_the_stack
- service/runtime/governor.py, the token check, the jitter or the budget restore removed:
    tests/unit/test_governor.py::test_the_rate_holds_over_200_sends
    tests/unit/test_governor.py::test_jitter_spreads_consecutive_sends_within_its_bound
    tests/unit/test_governor.py::test_the_budget_survives_a_restart_through_restore
- node_worker/src/session/send.js (isOnWhatsApp), a timed-out "on WhatsApp?" lookup taken as "not on WhatsApp":
    tests/system/test_sandbox.py::test_a_lookup_that_times_out_is_retried_not_failed_as_not_on_whatsapp
- service/runtime/worker_client.py, no waiting for a worker that is starting:
    tests/system/test_supervision.py::test_a_request_during_a_worker_restart_waits_for_it_instead_of_503
- service/http/middlewares.py, the drain's 503 gate removed, or /health/live gated too; service/http/drain.py, no Connection:
  close; service/http/openapi/operation.py, shutting_down documented only on the worker's routes:
    tests/app/test_drain.py::test_draining_every_documented_operation_answers_503_shutting_down_as_documented
    tests/system/test_drain_stack.py::test_sigterm_to_the_gateway_mid_burst_refuses_new_requests_and_loses_nothing
- service/http/views/stream.py, an event stream that does not end when the drain begins (the drain waits it out):
    tests/app/test_drain.py::test_a_request_in_flight_finishes_and_an_event_stream_ends_when_the_drain_begins
- service/runtime/dispatch.py, the drain cancelling sends in flight at once instead of letting them finish:
    tests/app/test_drain.py::test_a_send_in_flight_finishes_during_the_drain_and_its_result_is_recorded
- service/runtime/dispatch.py, claiming during the drain, or waiting callers answered only at its end:
    tests/app/test_drain.py::test_a_send_in_flight_finishes_during_the_drain_and_its_result_is_recorded
- service/runtime/dispatch.py, a send cut off at the deadline failed, or left `sending`, instead of requeued:
    tests/app/test_drain.py::test_a_send_still_running_at_the_deadline_goes_back_to_the_queue_and_goes_later_with_its_id
- service/webhooks/worker.py (EndpointWorker.drain), cut-off attempts not released, marked delivered, or claiming during the drain:
    tests/app/test_drain.py::test_webhook_attempts_in_flight_finish_or_stay_pending_with_their_attempt_counted
    tests/system/test_drain_stack.py::test_sigterm_to_the_gateway_mid_burst_refuses_new_requests_and_loses_nothing
- clients/python/src/wa_gateway_client/client.py, 503 not retried (shutting_down raised at once):
    tests/app/test_drain.py::test_the_python_client_retries_shutting_down_after_retry_after
- node_worker/src/accounts.js, SIGTERM logging the account out before closing it:
    tests/system/test_drain_stack.py::test_sigterm_to_the_whole_stack_with_sends_in_flight_then_back_connected_without_a_qr
- service/programs/launcher.py, the lock taken in the run dir instead of the data dir (a Kubernetes emptyDir apart):
    tests/system/test_data_lock_stack.py::test_a_second_stack_on_the_same_data_dir_refuses_to_start_and_the_first_keeps_serving
- service/programs/launcher.py, the lock not handed to supervisord (no pass_fds), or supervisord without PR_SET_PDEATHSIG:
    tests/system/test_data_lock_stack.py::test_the_lock_is_held_by_supervisord_too_not_by_its_programs
- service/programs/backup.py, restore without the data dir's lock (a stack with another run dir goes unnoticed):
    tests/app/test_data_lock.py::test_restore_refuses_while_a_stack_holds_the_data_dir_even_with_another_run_dir
- node_worker/src/main.js or node_worker/emulator/main.js, no watchParent (an orphaned worker or emulator runs on):
    tests/system/test_orphans_stack.py::test_kill_9_of_supervisord_leaves_no_program_and_the_data_dir_free
    tests/system/test_orphans_stack.py::test_kill_9_of_supervisord_with_the_launcher_leaves_no_program
- service/programs/orphans.py, no PR_SET_PDEATHSIG, or ParentWatch.orphaned() always False (each alone; the stack survives one):
    tests/app/test_orphans.py::test_a_program_runs_while_its_parent_lives_and_exits_within_a_second_after
- service/programs/launcher.py, not a subreaper (it exits, and lets the lock go, before the programs have):
    tests/system/test_orphans_stack.py::test_kill_9_of_supervisord_leaves_no_program_and_the_data_dir_free
- service/logging_setup.py, EPIPE raised from a log call (an orphaned gateway's drain dies on its first record):
    tests/system/test_orphans_stack.py::test_kill_9_of_supervisord_leaves_no_program_and_the_data_dir_free
- service/programs/watchdog.py, the uptime judged at FATAL from the last RUNNING (the old code), or not when a run ends:
    tests/unit/test_watchdog.py::test_a_storm_long_after_the_last_starts_short_even_when_it_begins_with_short_runs
    tests/unit/test_watchdog.py::test_the_cap_reached_in_one_run_counts_even_without_the_timer
- service/programs/watchdog.py, no reset on the timer while the program runs (/health shows the long delay):
    tests/unit/test_watchdog.py::test_a_storm_long_after_the_last_starts_short_even_when_it_begins_with_short_runs
- node_worker/src/settings.js, WA_SANDBOX_ROOT_KEY honoured without WA_SANDBOX=true (issue 21):
    node_worker/test/trust.test.js::refused without WA_SANDBOX=true (what `wa-gateway sandbox` sets)
    tests/system/test_readme_claims.py::test_a_sandbox_root_key_outside_the_sandbox_stops_the_stack_with_exit_78
- node_worker/src/settings.js, WA_SANDBOX_ROOT_KEY honoured for a server URL that is not loopback:
    node_worker/test/trust.test.js::refused in the sandbox for a server that is not loopback
- node_worker/patches/libsignal+6.0.0.patch, initOutgoing's signed pre-key check back to rc's (isInit, result ignored):
    node_worker/test/trust.test.js::a bad signature is refused before any session is built
    node_worker/test/trust.test.js::the send fails with a clear error, no session is built and nothing arrives
- node_worker/patches/*005+adv-hmac-constant-time*, the ADV HMAC compared with Buffer.compare again:
    node_worker/test/trust.test.js::the comparison is crypto.timingSafeEqual, over the received and the expected HMAC
    node_worker/test/trust.test.js::a wrong, short, long or missing HMAC refuses pairing (Invalid account signature)
- service/http/middlewares.py, a full disk's store error answered 500 (no ``storage_full`` branch); service/http/openapi/operation.py,
  507 not documented (``writes`` ignored):
    tests/app/outbox/test_full_disk.py::test_writes_answer_507_while_the_disk_is_full_and_work_once_space_is_back
    tests/system/test_full_disk_stack.py::test_a_full_data_dir_refuses_writes_stops_the_worker_and_everything_resumes_once
- service/store/db.py, "no such savepoint" instead of SQLITE_FULL when SQLite dropped the transaction, a read failed
  with the writes of its batch, or SQLite's I/O error on a full disk not told apart:
    tests/app/outbox/test_full_disk.py::test_a_batch_the_disk_filled_under_fails_with_sqlites_own_error_and_spares_its_reads
    tests/app/outbox/test_full_disk.py::test_an_io_error_on_a_full_disk_is_a_full_disk_and_on_a_working_one_stays_an_io_error
- service/runtime/dispatch.py, a message left `sending` by an outcome the full disk refused never put back:
    tests/app/outbox/test_full_disk.py::test_a_message_whose_outcome_the_full_disk_refused_goes_again_with_its_id
    tests/system/test_full_disk_stack.py::test_a_full_data_dir_refuses_writes_stops_the_worker_and_everything_resumes_once
- node_worker/src/journal.js or sent-ids.js, a failed write not reported (the worker runs on with a read-only store):
    node_worker/test/storage.test.js::every store of the worker reports a failed write to the handler before its caller hears of it
- node_worker/src/journal.js and main.js, no fail-stop at all (neither the report nor the storage guard):
    tests/system/test_full_disk_stack.py::test_a_full_data_dir_refuses_writes_stops_the_worker_and_everything_resumes_once
- node_worker/src/main.js, no start-up probe, or no probe while it runs:
    node_worker/test/storage.test.js::a worker on a full data dir exits at start, before it listens or dials WhatsApp
    node_worker/test/storage.test.js::a running worker whose data dir fills up exits within its probe interval
- node_worker/src/session/store.js (openFailure), a session store a full disk keeps from opening taken as broken (state `failed`):
    node_worker/test/storage.test.js::a session store the full disk keeps from opening stops the worker instead of failing the session
- service/programs/launcher.py, the launcher's start-up line printed as plain text again, or naming `api-key` without --sandbox in the sandbox;
  no `--user` for supervisord (CRIT running as root); conf/supervisord.conf, the socket without credentials (CRIT without authentication) (issue 23):
    tests/system/test_first_hour_stack.py::test_the_stream_is_records_only_with_the_launchers_line_naming_the_sandbox_command_and_no_crit
- service/http/middlewares.py, a 401 naming `api-key` without --sandbox in the sandbox; clients/python selftest.py, a 401 on /health/live failing
  "reachable", or reported without "unauthorized: the key is wrong or missing":
    tests/system/test_first_hour_stack.py::test_a_401_names_the_command_that_prints_the_sandbox_key
- service/http/middlewares.py, polls logged at info (``is_poll`` False); node_worker/src/session/inbound.js, message.received logged by both the
  receipt hook and Baileys' upsert (the old seq check):
    tests/system/test_first_hour_stack.py::test_polls_log_at_debug_operations_at_info_and_one_worker_line_per_inbound_message
- node_worker/emulator/pairing.js, the phone reading /status whatever the account:
    node_worker/test/emulator-restart.test.js::`account` in the body reads /accounts/{account}/status; 409 only when that account shows no QR
    tests/system/test_first_hour_stack.py::test_the_phone_scans_the_qr_of_another_account_without_being_given_it
- service/programs/launcher.py, no check of a run dir in use (supervisord's "another program is already listening"), or ctl exec'ing supervisorctl
  without a stack (its raw socket error, exit 4):
    tests/system/test_first_hour_stack.py::test_a_second_stack_on_a_run_dir_in_use_names_the_holder_in_one_line
    tests/system/test_first_hour_stack.py::test_ctl_without_a_running_stack_says_so_in_one_line
- clients/python/src/wa_gateway_client/cli.py, selftest's 60 s default leaking into every command, options accepted on one side of the command
  only, --sandbox missing from a command's help:
    tests/unit/test_first_hour_cli.py::test_each_command_keeps_its_own_default_timeout
    tests/unit/test_first_hour_cli.py::test_global_options_work_before_or_after_the_command
    tests/unit/test_first_hour_cli.py::test_sandbox_is_in_every_commands_help_on_the_gateways_host
- clients/python/src/wa_gateway_client/linking.py, connect printing a line per poll (not per change), or the unreachable line without its cause:
    tests/system/test_first_hour_stack.py::test_connect_says_once_why_whatsapp_is_unreachable
    tests/unit/test_first_hour_cli.py::test_connect_says_why_whatsapp_is_unreachable
- service/programs/backup.py, a checkout data dir's old data set aside inside the checkout; clients/python/setup.py, building into ./build:
    tests/unit/test_first_hour_cli.py::test_restore_sets_the_replaced_data_aside_outside_the_checkout
    tests/unit/test_first_hour_cli.py::test_building_the_client_leaves_no_build_output_in_the_checkout
- service/media/store.py, the size checked with ``>=`` (a blob of exactly its limit refused), or not at all:
    tests/unit/test_media_store.py::test_one_byte_over_the_limit_is_413_and_leaves_nothing
    tests/unit/test_media_base64.py::test_base64_up_to_the_limit_is_stored
    tests/app/test_media_intake.py::test_a_url_that_sends_forever_stops_at_the_limit
- service/media/store.py, the blob copied to its name instead of renamed, or a fsync dropped (issue 24):
    tests/unit/test_media_store.py::test_a_commit_fsyncs_the_file_renames_it_into_place_then_fsyncs_its_directories
- service/media/store.py, a cancelled commit cleaned up under its running thread:
    tests/unit/test_media_store.py::test_a_commit_whose_caller_is_cancelled_finishes_in_its_thread_and_leaves_no_temp_file
- service/media/sniff.py, the declared mimetype not compared with the bytes, or a voice note not required to be OGG/Opus:
    tests/unit/test_media_sniff.py::test_a_declared_mimetype_the_bytes_are_not_is_400_media_type_mismatch
    tests/unit/test_media_sniff.py::test_a_voice_note_must_be_ogg_opus
- service/media/fetch.py, IP literals not checked, aiohttp following redirects itself, or the connector without the guarded resolver:
    tests/app/test_media_intake.py::test_loopback_link_local_and_private_addresses_are_refused_before_any_request
    tests/app/test_media_intake.py::test_a_redirect_to_a_refused_address_is_refused
- service/media/fetch.py, no total timeout, or a Content-Length over the limit not refused before the body:
    tests/app/test_media_intake.py::test_a_url_that_never_answers_times_out
    tests/app/test_media_intake.py::test_a_content_length_over_the_limit_is_refused_before_the_body
- service/media/intake.py, base64 checked only chunk by chunk (padding in the middle accepted):
    tests/unit/test_media_base64.py::test_broken_base64_is_400_invalid_media_and_leaves_nothing
- service/media/intake.py, a multipart file committed at its part's end, before the form's closing boundary:
    tests/app/test_media_multipart.py::test_a_truncated_body_is_400_invalid_media_and_leaves_nothing
- node_worker/src/session/send.js storeBeforeSending, the stored message not reused for a repeated id (media uploaded again):
    node_worker/test/worker-media-send.test.js::a second send of the same id (a resend after a crash) reuses the stored message: one upload, one message
- node_worker/src/session/send.js storeBeforeSending, a send of an id whose upload still runs not waiting for it:
    node_worker/test/worker-media-send.test.js::two sends of one id at once (the gateway retrying a slow upload): one upload, one message
- node_worker/src/session/media.js openMedia, the file's hash not checked before Baileys reads it; ENOENT not media_missing:
    node_worker/test/worker-media-send.test.js::a file that does not hash to its name: 422 media_corrupt, nothing uploaded or sent; batch items too
    node_worker/test/worker-media-send.test.js::a file not in the media store: 422 media_missing, nothing uploaded or sent
- node_worker/src/session/send.js makeMedia, Baileys' fileSha256 not checked (file.check dropped); media.js check comparing nothing:
    node_worker/test/worker-media-send.test.js::a file that changes after its check: the bytes Baileys encrypted are checked too, nothing is sent or stored
    node_worker/test/worker-media-send.test.js::openMedia: the bytes Baileys hashed are checked again, and a read that fails never errors the stream
- node_worker/src/session/media.js endOnError, a read error passed on to Baileys' stream (its encryptedStream then crashes the worker):
    node_worker/test/worker-media-send.test.js::openMedia: the bytes Baileys hashed are checked again, and a read that fails never errors the stream
- node_worker/src/server.js / session/media.js parseMedia, text and media both taken, caption on audio, unknown media fields ignored:
    node_worker/test/worker-media-send.test.js::bad requests are 400 before anything is read or uploaded
- node_worker/src/session/connection.js, the sandbox media CA not given to Baileys (fetchAgent / dispatcher); session/media.js, ptt dropped (every kind's test, named by a template):
    node_worker/test/worker-media-send.test.js::the contact gets the same bytes
- node_worker/src/settings.js, WA_SANDBOX_MEDIA_CA taken outside the sandbox:
    node_worker/test/worker-media-send.test.js::WA_SANDBOX_MEDIA_CA is refused outside the sandbox, and must be a readable PEM; WA_MEDIA_DIR defaults to the data dir
- service/programs/launcher.py _sandbox_env, the emulator's media CA not created nor named to the worker:
    tests/unit/test_launcher_media_ca.py::test_the_sandbox_env_names_the_emulators_media_ca_to_the_worker
- node_worker/api/openapi.json, invalid_media missing from /send's 400 codes:
    tests/system/test_worker_fuzz.py::test_every_operation_holds_to_the_document
- service/media/store_pg.py, adopt not finding the blob already stored, or without the blob's advisory lock (two instances at once):
    tests/app/test_media_stores.py::test_the_same_content_adopted_again_and_twice_at_once_is_one_blob
    tests/app/test_media_stores.py::test_two_instances_adopting_one_blob_at_once_store_it_once
- service/media/store_pg.py / store_s3.py, a range off by one (substring from 0, an inclusive end); S3 parts not all completed:
    tests/app/test_media_stores.py::test_a_blob_goes_in_is_read_by_range_comes_back_and_goes
- service/media/store_pg.py / store_s3.py, adopt not re-hashing the local copy (a damaged file made durable):
    tests/app/test_media_stores.py::test_a_damaged_local_copy_is_not_made_durable
- service/media/store_pg.py / store_s3.py forget, the untouched_since check dropped (a sweep takes a blob adopted since it looked):
    tests/app/test_media_stores.py::test_a_sweep_never_takes_a_remote_blob_adopted_since_it_looked
- service/media/refs.py, inbound rows left out of the references, or messages not done pruned:
    tests/app/test_media_retention.py::test_a_message_not_done_keeps_its_media_however_old
- service/media/retention.py sweep, the grace period ignored; service/media/store.py FileStore.adopt not renewing the mtime:
    tests/app/test_media_retention.py::test_the_grace_period_spares_a_blob_whose_row_is_not_committed_yet
    tests/app/test_media_retention.py::test_content_adopted_again_is_young_again
- service/media/retention.py sweep, a remote store's local copies never evicted:
    tests/app/test_media_retention.py::test_a_remote_store_keeps_the_local_copy_only_as_a_cache
- service/media/store_pg.py local_path, an existing local copy handed out without renewing its mtime (evicted under the worker):
    tests/app/test_media_retention.py::test_a_local_copy_the_worker_was_just_given_is_not_evicted
- service/media/refs.py, the quota counting a blob once per message (UNION ALL), or a blob the account holds charged again:
    tests/app/test_media_retention.py::test_the_quota_counts_each_accounts_distinct_unpruned_blobs
- service/programs/backup.py, the media store's tmp/ copied, or restored blobs left with the backup's modes:
    tests/app/test_backup_media.py::test_the_media_store_is_backed_up_and_restored_without_its_temp_files
- service/runtime/downloads.py, the downloaded sha256 not compared with the sender's:
    tests/app/test_media_downloads.py::test_another_sha256_than_announced_is_failed_and_nothing_is_adopted
- service/runtime/downloads.py, a not-connected attempt not given back, or a connection not resuming the waiting downloads:
    tests/app/test_media_downloads.py::test_not_connected_gives_the_attempt_back_and_a_connection_resumes_it
- service/runtime/downloads.py, what a crash left downloading not resumed at start:
    tests/app/test_media_downloads.py::test_a_download_in_flight_at_a_crash_is_resumed_by_the_next_start
- service/runtime/downloads.py, a 410 media_gone final at once, the backoff not doubling, or no age bound:
    tests/app/test_media_downloads.py::test_media_gone_is_retried_until_its_bound
    tests/app/test_media_downloads.py::test_a_failed_attempt_is_retried_with_backoff_then_stored
    tests/app/test_media_downloads.py::test_a_media_too_large_or_too_old_is_failed_without_asking_the_worker
- service/runtime/downloads.py, a file already stored downloaded again:
    tests/app/test_media_downloads.py::test_the_same_file_again_is_not_downloaded_twice
- service/store/inbound_media.py, an attempt not counted at its claim, or a download settled twice (no state guard):
    tests/app/test_media_downloads.py::test_attempts_exhausted_fail_it_with_the_last_error_and_media_failed
- service/store/inbound_media.py public, the worker's descriptor shown:
    tests/app/test_media_downloads.py::test_a_media_message_is_announced_downloading_with_type_and_media_and_no_descriptor
- service/store/inbound.py, a media message nothing can download given no media.failed:
    tests/app/test_media_downloads.py::test_a_media_without_a_usable_descriptor_is_failed_at_once
- service/http/views/media.py, If-None-Match or If-Range ignored, a Range past the end not 416, a suffix range read from the start:
    tests/app/test_media_view.py::test_if_none_match_answers_304_for_its_etag
    tests/app/test_media_view.py::test_if_range_sends_the_range_only_for_this_etag
    tests/app/test_media_view.py::test_one_range_is_206_past_the_end_416_anything_else_the_whole
- service/http/views/media.py, a filename kept with its path or control characters or without filename*, the declared mimetype unchecked, nosniff dropped:
    tests/app/test_media_view.py::test_a_hostile_filename_is_one_safe_header
    tests/app/test_media_view.py::test_the_declared_mimetype_is_served_only_when_plain
    tests/app/test_media_view.py::test_the_bytes_stream_with_type_length_etag_and_an_attachment
- service/http/middlewares.py, /media not among a default key's routes:
    tests/app/test_media_view.py::test_keys_are_scoped_as_on_messages
- service/store/inbound_media.py served, pruned_at ignored or a sent message's media not found; service/store/inbound.py get, the media not attached:
    tests/app/test_media_view.py::test_media_not_there_answers_the_contracts_errors
    tests/app/test_media_view.py::test_a_sent_messages_media_is_served_too
    tests/app/test_media_view.py::test_messages_show_the_media_and_never_the_descriptor
- service/http/views/media.py, a Range read from the file's start; service/runtime/accounts.py, the downloader never started:
    tests/system/test_inbound_media_stack.py::test_each_kind_a_contact_sends_is_stored_and_served_identical
- clients/python/.../media.py, no Range on a resumed download, the sha256 check dropped, the whole file read into memory, file names percent-quoted, no wait while not ready, a sender's path kept in a file name (issue 24):
    tests/app/test_client_media.py::test_a_download_resumes_after_a_dropped_connection_and_is_checked
    tests/app/test_client_media.py::test_the_bytes_stream_and_a_mismatch_with_their_sha256_raises
    tests/app/test_client_media.py::test_a_file_is_streamed_not_read_whole_into_memory
    tests/app/test_client_media.py::test_a_path_is_sent_as_a_form_the_gateway_takes_with_its_name_caption_and_kind
    tests/app/test_client_media.py::test_a_download_waits_while_the_gateway_is_downloading_and_reports_a_failed_one
    tests/app/test_client_media.py::test_a_suggested_name_is_a_plain_file_name
- clients/python/.../media.py, a sender's file name replacing a file already there:
    tests/system/test_client_media_stack.py::test_the_client_downloads_a_contacts_media_to_a_file_and_as_a_stream
- service/http/static/status-media.js, a caption set as HTML, a download blob typed as its mimetype, a failed file shown as downloadable, the preview bound raised:
    tests/system/test_status_page_media.py::test_an_image_shows_as_its_thumbnail_and_a_document_downloads_whole
    tests/system/test_status_page_media.py::test_a_media_download_that_failed_is_shown_as_failed
    tests/system/test_status_page_media.py::test_an_image_over_the_thumbnail_bound_is_offered_as_a_download_not_fetched
- clients/python/.../models.py, Event.media only for message.received:
    tests/app/test_client_media.py::test_the_media_object_of_a_message_is_typed
- service/http/views/send_media.py, a form's fields not checked before its file is committed (``check`` not called):
    tests/app/outbox/test_send_media_api.py::test_a_bad_form_keeps_nothing_even_when_its_fields_come_after_the_file
- service/http/views/messages.py, a URL send retried with its Idempotency-Key fetched again (the replay check skipped):
    tests/app/outbox/test_send_media_api.py::test_a_retry_with_its_key_is_answered_without_fetching_or_sending_again
- service/runtime/worker_client.py worker_message, a voice note's ptt not passed to the worker:
    tests/app/outbox/test_send_media_api.py::test_each_kind_by_each_source_reaches_the_worker_by_its_sha256
- service/http/views/send_media.py, the account's media quota not checked:
    tests/app/outbox/test_send_media_api.py::test_the_accounts_media_quota_refuses_a_send_that_would_pass_it
- node_worker/src/session/media-download.js, no media retry on 410 (the phone never asked to upload again):
    tests/system/test_media_chaos.py::test_media_both_ways_under_kills_none_lost_none_doubled_and_expired_media_recovered
    node_worker/test/worker-media-receive.test.js::media_expire: the media host answers 410, the phone uploads it again (media retry), and the new path is answered
- tests/system/test_cluster.py's stacks on the file store (WA_MEDIA_STORE=file): another instance cannot serve the media:
    tests/system/test_cluster.py::test_media_received_on_one_instance_is_served_by_the_other_and_sent_from_either
- node_worker/src/session/media-fetch.js, the MAC, the encrypted sha256 or the plaintext sha256 not checked, or the length bound removed (helper W):
    node_worker/test/media-fetch.test.js::each check on its own: a broken one is `corrupt` and leaves nothing in the store
    node_worker/test/media-fetch.test.js::a host that sends on and on (no Content-Length) is cut off once past the file\'s length
- node_worker/src/session/media-fetch.js, the whole body buffered before it is checked (helper W):
    node_worker/test/worker-media-receive.test.js::a large document streams: the worker\'s RSS and what it holds grow far less than the file
- node_worker/src/session/media-download.js, no fresh download after a failed check; no answer from the store for a file already there (helper W):
    node_worker/test/worker-media-receive.test.js::media_tamper: a damaged file is downloaded twice, then 422 media_corrupt, and nothing is left in WA_MEDIA_DIR
    node_worker/test/worker-media-receive.test.js::a repeated download is answered from the store: the media host is not asked again
- node_worker/src/session/send.js storeBeforeSending, a repeated id made anew instead of the stored protobuf (an edit sent twice with different texts):
    node_worker/test/worker-conversation-send.test.js::a resend of an edit\'s id goes out with its first content, never a second one
- node_worker/src/session/send.js makeAndStore / makeMedia, `quoted` not handed to generateWAMessage (no quote at the contact):
    node_worker/test/worker-conversation-send.test.js::a reply quotes the contact\'s message or ours, as a text, a location or media
- node_worker/src/session/outbound-content.js baileysContent: the poll's messageSecret not the gateway's secret; a reaction's fromMe inverted; an edit or revoke without its key; a location's coordinates swapped; contact cards unnamed:
    node_worker/test/worker-conversation-send.test.js::a poll: the contact sees its question and options, single or multiple choice, with the gateway\'s secret
    node_worker/test/worker-conversation-send.test.js::a reaction lands on the message it names, the contact\'s or ours, and "" removes it
    node_worker/test/worker-conversation-send.test.js::an edit replaces our text at the contact; a revoke marks our message revoked
    node_worker/test/worker-conversation-send.test.js::a location and contact cards arrive as the contact\'s phone shows them
- node_worker/src/session/chat-actions.js, read keys as fromMe (no receipt), the presence state ignored, availability without a push name answered sent:
    node_worker/test/worker-conversation-send.test.js::read: the contact gets a read receipt for every id; presence: it sees us typing, recording, paused
- node_worker/src/session/chat-actions.js, a chat presence not awaited (it leaves after the batch's next message); send.js sendBatch, a refused presence stopping the batch:
    node_worker/test/worker-conversation-send.test.js::a batch may mix messages and chat actions; they leave in its order, and a refused presence fails alone
- node_worker/src/session/outbound-content.js relayOptions, edit="1" / edit="7" / the poll meta node dropped; the reply's LID ignored; a content logged; lengths in UTF-16 units:
    node_worker/test/outbound-content.test.js::relayed like Baileys\' sendMessage: edit="1" for an edit, edit="7" for a revoke, a poll meta node; nothing for the rest
    node_worker/test/outbound-content.test.js::a reply\'s contextInfo: the quoted id, its text, and its sender (us, the contact, or the contact\'s LID)
    node_worker/test/outbound-content.test.js::the checks keep exactly what they take, and a log line sees kinds and sizes only
- service/http/static/status-conversation.js, a quote set as HTML; a sender's first reaction kept over its latest; "edited" only past two versions; revoked_at ignored; a reply looked up by WhatsApp's id; our reaction rows ignored:
    tests/system/test_status_page_conversation.py::test_a_contacts_replies_reactions_edits_and_deletes_show_on_their_messages
    tests/system/test_status_page_conversation.py::test_our_reply_reaction_edit_revoke_and_read_show_on_their_messages
- clients/python/.../client.py send, reply_to not sent; cli_conversation.py, a --contact's name and number swapped; models.py, an event typed as another type's model; media.py, reply_to not in the form (issue 25):
    tests/system/test_client_conversation_stack.py::test_the_client_replies_reacts_edits_revokes_reads_and_types
    tests/system/test_client_conversation_stack.py::test_the_cli_replies_reacts_edits_revokes_reads_and_sends_a_location_and_a_poll
    tests/system/test_client_conversation_stack.py::test_a_contacts_conversation_comes_back_as_typed_events_and_messages
    tests/app/test_client_media.py::test_a_media_reply_names_the_quoted_message_in_the_json_and_in_the_form
- node_worker/src/decrypt-cache.js, decryptGroupMessage not wrapped (a group message's skmsg result not on disk before its sender-key change; the copy delivered again after a crash cannot be decrypted, issue 26):
    node_worker/test/worker-groups-durable.test.js::a group message held before the journal: no receipt; a worker that dies there gets it again, once, from the decrypt cache
- node_worker/src/session/inbound.js onDecrypted skipping group messages (journaled only by the upsert, after the receipt):
    node_worker/test/worker-groups-durable.test.js::a group message held before the journal: no receipt; a worker that dies there gets it again, once, from the decrypt cache
- node_worker/src/session/connection.js, beforeNotificationAck (patches/*006*) not awaited (a group change acked before it is journaled):
    node_worker/test/worker-groups-durable.test.js::a group change held before the journal: a worker that dies there gets the notification again, once
- node_worker/src/session/group-events.js, no sender-key rotation on a removal:
    node_worker/test/worker-groups-durable.test.js::a member\'s removal rotates our sender key: the next message goes with a new key the remaining members decrypt
- node_worker/src/session/group-metadata.js, forget() a no-op (a send relays with the metadata from before an add: the new member gets no sender key, "No sender key"):
    node_worker/test/worker-groups.test.js::a member added later gets the sender key and decrypts what follows; one removed gets nothing more
- node_worker/src/session/statuses.js, a group message's statuses counted per message, not per participant; send.js, a repeated id made anew:
    node_worker/test/worker-groups.test.js::a group message is decrypted by every contact member (the sender key reaches each), mentions included
- node_worker/src/session/inbound.js, group chats dropped as before issue 26:
    node_worker/test/worker-groups.test.js::a contact\'s group message is a message event with the group and the participant
- node_worker/src/session/groups.js, every participant's result taken as 200; an invite code WhatsApp calls gone (410) or not acceptable (406) not a 404; group-events.js, a subject change not an event; send.js, no membership check before a group send (502 instead of 404 group_not_found):
    node_worker/test/worker-groups.test.js::a group created through the worker: WhatsApp\'s result per participant, the server\'s members, our role
    node_worker/test/worker-groups.test.js::invite links, joining by code, leaving
    node_worker/test/worker-groups.test.js::the group\'s changes are group.participants and group.updated events
    node_worker/test/worker-groups.test.js::refusals: not a group id, a group the account is not in, participant lists, contents a group cannot take
- node_worker/src/session/outbound-content.js mentionsOf returning nothing (no contextInfo.mentionedJid):
    node_worker/test/group-content.test.js::mentions become contextInfo.mentionedJid of the text, once each
- node_worker/src/session/outbound-content.js quotedMessage ignoring quoted.participant (a reply to a member's group message names the group as its sender):
    node_worker/test/group-content.test.js::a reply to, or a reaction on, a member\'s group message names that member
- service/http/static/status-thread.js and status-chats.js, a message's text or a chat's name set as HTML; a group member's name not shown; the older page read without its cursor; the chats and the thread not reloaded on the stream's events; a reaction's sender read from the wrong field; history not marked; the unread count not shown; the thread ordered by time instead of the API's order (issue 27):
    tests/system/test_status_page_chats.py::test_a_contact_writing_raises_its_chat_with_its_unread_count_and_the_thread_shows_both_directions
    tests/system/test_status_page_chats.py::test_a_long_thread_shows_its_newest_page_and_older_ones_on_demand
    tests/system/test_status_page_chats.py::test_replies_reactions_edits_deletes_and_media_show_in_the_thread
    tests/system/test_status_page_chats.py::test_the_phones_history_shows_as_history
    tests/system/test_status_page_chats.py::test_a_groups_thread_names_the_member_who_wrote
- service/mcp/caller.py, a scoped key's MCP session calling the API with the admin key (or ignoring the key's own tools):
    tests/app/mcp/test_mcp_http.py::test_a_scoped_key_cannot_see_or_send_for_another_account
    tests/app/mcp/test_mcp_key_rails.py::test_a_tool_left_out_of_the_keys_list_is_not_listed_nor_callable
- service/mcp/asgi_bridge.py, receive() deaf to the drain (an MCP event stream holds SIGTERM's drain to its deadline):
    tests/app/mcp/test_mcp_drain.py::test_a_sessions_event_stream_ends_when_the_drain_begins
- service/mcp/inbox.py, no notify on a new inbound message:
    tests/system/test_mcp_stack.py::test_over_streamable_http_an_agent_sends_and_reads_the_answer
- service/runtime/accounts.py, each account's link polling the worker's /status again (``link.start()``):
    tests/app/test_shard_watch.py::test_an_idle_gateway_holds_one_request_for_all_its_accounts
- service/runtime/worker_events.py, an idle event reader long-polling its own journal (20 s) instead of waiting for a nudge:
    tests/app/test_shard_watch.py::test_an_idle_gateway_holds_one_request_for_all_its_accounts
    tests/system/test_shard_watch_stack.py::test_150_accounts_are_created_at_once_and_idle_with_one_connection_to_the_worker
- service/runtime/worker_events.py, ``nudge`` not waking the reader:
    tests/app/test_shard_watch.py::test_an_event_of_an_idle_account_is_stored_at_once_and_its_reader_stays_hot_for_a_while
- service/runtime/shard_watch.py, a shard that stops answering leaving its accounts' states as they were:
    tests/app/test_shard_watch.py::test_a_shard_that_stops_answering_makes_its_accounts_unknown_and_a_new_boot_is_read_from_zero
- node_worker/src/changes.js, a change not waking the waiting readers:
    node_worker/test/changes.test.js::after=0 lists every open account; then only what changed, and a long-poll is woken by a journal event
    node_worker/test/changes.test.js::a state change (real Baileys: connecting, then a QR) wakes a waiting reader
- node_worker/src/changes.js, a reader of another boot not given the whole list:
    node_worker/test/changes.test.js::a reader of another boot, or ahead of this boot, gets the whole list at once
"""

from __future__ import annotations

import re

from tests.helpers.stack import REPO


def listed() -> list[tuple[str, str]]:
    return re.findall(r"^    ((?:tests|node_worker/test)/\S+?)::(.+)$", __doc__, re.M)


def test_the_list_is_not_empty():
    assert len(listed()) >= 14


def test_every_test_the_list_names_exists():
    """A renamed or deleted test would silently drop a mutation from the list."""
    for path, name in listed():
        source = (REPO / path).read_text()
        if path.endswith(".py"):
            assert re.search(rf"^(async )?def {re.escape(name)}\(", source, re.M), f"{path}::{name}"
        else:
            assert name in source.replace("\\'", "'"), f"{path}::{name}"
