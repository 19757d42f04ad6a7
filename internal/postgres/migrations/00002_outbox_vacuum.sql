-- +goose Up
-- The outbox is a queue: every row is deleted soon after it is written. Vacuum it after a few
-- thousand dead rows instead of a fifth of the table, without the cost-based pauses, so the
-- relay's scan from the head never wades through a backlog of dead index entries.
ALTER TABLE outbox SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 5000,
    autovacuum_vacuum_cost_delay = 0);

-- +goose Down
ALTER TABLE outbox RESET (autovacuum_vacuum_scale_factor, autovacuum_vacuum_threshold,
    autovacuum_vacuum_cost_delay);
