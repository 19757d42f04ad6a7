package loadtest

import (
	"context"
	"fmt"
	"time"
)

// Recover marks failed the runs a previous process left in progress: the one Redis holds as
// active (with its latest live state), and any other history shows preparing or running.
func (m *Manager) Recover(ctx context.Context) error {
	id, err := m.d.Live.Active(ctx)
	if err != nil {
		return fmt.Errorf("read the active run: %w", err)
	}
	if id != "" {
		r, err := m.d.Live.Run(ctx, id)
		if err != nil {
			return fmt.Errorf("read the active run: %w", err)
		}
		if r == nil {
			if err := m.d.Live.PutRun(ctx, id, nil, false); err != nil { // just clear the mark
				return err
			}
		} else {
			pts, _ := m.d.Live.Points(ctx, id)
			rec := Record{Run: *r, Points: pts}
			if old, err := m.d.History.Record(ctx, id); err == nil && old != nil {
				rec.Distribution = old.Distribution
			}
			if err := m.interrupted(ctx, rec); err != nil {
				return err
			}
		}
	}
	runs, err := m.d.History.Runs(ctx, []string{StatusPreparing, StatusRunning}, time.Time{}, "", 1000)
	if err != nil {
		return fmt.Errorf("read unfinished runs: %w", err)
	}
	for _, r := range runs {
		if r.ID == id {
			continue // the active run, recorded above
		}
		rec, err := m.d.History.Record(ctx, r.ID)
		if err != nil || rec == nil {
			return err
		}
		if err := m.interrupted(ctx, *rec); err != nil {
			return err
		}
	}
	return nil
}

// interrupted records a run that a previous process left unfinished as failed, or, if only its
// verification was cut short, as done without one.
func (m *Manager) interrupted(ctx context.Context, rec Record) error {
	r := &rec.Run
	if r.Phase == PhaseDone && Terminal(r.Status) {
		return m.save(ctx, rec, false)
	}
	if !Terminal(r.Status) {
		r.Error = fmt.Sprintf("interrupted: the loadtest service stopped while the run was %s", r.Status)
		r.Status = StatusFailed
		m.d.Metrics.runs.WithLabelValues(StatusFailed).Inc()
	} else {
		r.Error = "verification interrupted: the loadtest service stopped"
	}
	r.Phase = PhaseDone
	r.InFlight = 0
	if r.EndedAt == nil {
		now := time.Now().UTC()
		r.EndedAt = &now
	}
	m.d.Log.Warn("marked an interrupted run", "run", r.ID, "status", r.Status)
	return m.save(ctx, rec, false)
}
