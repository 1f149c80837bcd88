-- Cairn schema, version 6: enqueue_workflow applies the API's rules.
--
-- The function now refuses what `client.enqueue` refuses, so a workflow enqueued from SQL is one
-- the engine can run and list:
-- - names and ids (workflow name, queue, id, dedup_id, partition_key) are non-empty and at most 255
--   UTF-16 code units long, as JavaScript counts them (a character outside the Basic Multilingual
--   Plane counts two). PostgreSQL text cannot hold NUL, so that rule needs no check here;
-- - priority is an integer from -2147483648 to 2147483647;
-- - delay_ms is a whole number of milliseconds from 0 to 1e15 (a fraction is rounded up);
-- - an id already used by a workflow of another name raises SQLSTATE 23505 (unique_violation)
--   instead of returning the id as if the workflow had been enqueued. An id already used by a
--   workflow of the same name returns the id and changes nothing, as `client.enqueue` does.
-- Refusals other than the id conflict raise SQLSTATE 22023 (invalid_parameter_value).

-- The length of a string as JavaScript counts it: UTF-16 code units.
CREATE FUNCTION utf16_length(p text) RETURNS integer LANGUAGE sql IMMUTABLE STRICT AS $$
  SELECT char_length(p) + char_length(regexp_replace(p, '[^\U00010000-\U0010FFFF]', '', 'g'))
$$;

CREATE OR REPLACE FUNCTION enqueue_workflow(p_name text, p_queue text, p_input json DEFAULT 'null', p_options json DEFAULT '{}')
RETURNS text LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
  v_options  json := coalesce(p_options, '{}');
  v_id       text;
  v_now      bigint := (extract(epoch FROM clock_timestamp()) * 1000)::bigint;
  v_delay    bigint;
  v_priority integer;
  v_number   numeric;
  v_queue    queues%ROWTYPE;
  v_existing text;
  v_field    text;
  v_value    text;
BEGIN
  IF p_name IS NULL OR p_name = '' THEN
    RAISE EXCEPTION 'cairn: enqueue_workflow needs a workflow name' USING ERRCODE = '22023';
  END IF;
  IF json_typeof(v_options) IS DISTINCT FROM 'object' THEN
    RAISE EXCEPTION 'cairn: options must be a JSON object, got %', v_options::text USING ERRCODE = '22023';
  END IF;
  -- Names and ids: at most 255 UTF-16 code units, like the API.
  FOREACH v_field IN ARRAY ARRAY['name', 'queue', 'id', 'dedup_id', 'partition_key'] LOOP
    v_value := CASE v_field WHEN 'name' THEN p_name WHEN 'queue' THEN p_queue ELSE v_options->>v_field END;
    IF v_field NOT IN ('name', 'queue') AND v_options->v_field IS NOT NULL AND json_typeof(v_options->v_field) NOT IN ('string', 'null') THEN
      RAISE EXCEPTION 'cairn: % must be a string, got %', v_field, (v_options->v_field)::text USING ERRCODE = '22023';
    END IF;
    IF v_value IS NOT NULL AND v_value = '' AND v_field <> 'name' THEN
      RAISE EXCEPTION 'cairn: % must be a non-empty string', v_field USING ERRCODE = '22023';
    END IF;
    IF v_value IS NOT NULL AND utf16_length(v_value) > 255 THEN
      RAISE EXCEPTION 'cairn: % must be at most 255 characters, got %', v_field, utf16_length(v_value) USING ERRCODE = '22023';
    END IF;
  END LOOP;
  SELECT * INTO v_queue FROM queues WHERE name = p_queue;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'cairn: queue "%" is not declared by any engine', p_queue USING ERRCODE = '22023';
  END IF;
  IF v_queue.partitioned AND v_options->>'partition_key' IS NULL THEN
    RAISE EXCEPTION 'cairn: queue "%" is partitioned; pass partition_key in the options', p_queue USING ERRCODE = '22023';
  END IF;
  IF NOT v_queue.partitioned AND v_options->>'partition_key' IS NOT NULL THEN
    RAISE EXCEPTION 'cairn: queue "%" is not partitioned, so it takes no partition_key', p_queue USING ERRCODE = '22023';
  END IF;
  -- priority: an integer that fits the column.
  v_priority := 0;
  IF v_options->'priority' IS NOT NULL AND json_typeof(v_options->'priority') <> 'null' THEN
    IF json_typeof(v_options->'priority') <> 'number' THEN
      RAISE EXCEPTION 'cairn: priority must be an integer, got %', (v_options->'priority')::text USING ERRCODE = '22023';
    END IF;
    v_number := (v_options->>'priority')::numeric;
    IF v_number <> trunc(v_number) OR v_number < -2147483648 OR v_number > 2147483647 THEN
      RAISE EXCEPTION 'cairn: priority must be an integer from -2147483648 to 2147483647, got %', v_options->>'priority' USING ERRCODE = '22023';
    END IF;
    v_priority := v_number::integer;
  END IF;
  -- delay_ms: whole milliseconds from 0 to 1e15, a fraction rounded up.
  v_delay := 0;
  IF v_options->'delay_ms' IS NOT NULL AND json_typeof(v_options->'delay_ms') <> 'null' THEN
    IF json_typeof(v_options->'delay_ms') <> 'number' THEN
      RAISE EXCEPTION 'cairn: delay_ms must be a number of milliseconds, got %', (v_options->'delay_ms')::text USING ERRCODE = '22023';
    END IF;
    v_number := (v_options->>'delay_ms')::numeric;
    IF v_number < 0 THEN
      RAISE EXCEPTION 'cairn: delay_ms must be >= 0, got %', v_options->>'delay_ms' USING ERRCODE = '22023';
    END IF;
    IF v_number > 1e15 THEN
      RAISE EXCEPTION 'cairn: delay_ms must be at most 1000000000000000, got %', v_options->>'delay_ms' USING ERRCODE = '22023';
    END IF;
    v_delay := ceil(v_number)::bigint;
  END IF;
  v_id := coalesce(v_options->>'id', gen_random_uuid()::text);
  INSERT INTO workflows (id, name, status, input, queue, priority, dedup_id, partition_key, available_at,
                         enqueue_seq, created_at, updated_at)
  VALUES (v_id, p_name, CASE WHEN v_delay > 0 THEN 'DELAYED' ELSE 'ENQUEUED' END,
          json_build_object('json', p_input)::text, p_queue, v_priority,
          v_options->>'dedup_id', v_options->>'partition_key', CASE WHEN v_delay > 0 THEN v_now + v_delay END,
          nextval('enqueue_seq'), v_now, v_now)
  ON CONFLICT (id) DO NOTHING;
  IF NOT FOUND THEN
    SELECT name INTO v_existing FROM workflows WHERE id = v_id;
    IF v_existing IS DISTINCT FROM p_name THEN
      RAISE EXCEPTION 'cairn: workflow id "%" is already used by workflow "%", so it cannot enqueue "%"', v_id, v_existing, p_name
        USING ERRCODE = '23505';
    END IF;
  END IF;
  RETURN v_id;
END
$$;
