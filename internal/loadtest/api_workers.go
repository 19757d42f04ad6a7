package loadtest

import (
	"net/http"

	"github.com/google/uuid"

	"txn/internal/apierr"
	"txn/internal/httpedge"
	"txn/internal/service"
)

// The load workers' side of the API: they join the fleet, report at each heartbeat and fetch
// their part of a run (fleet.go).

// maxReportBytes bounds a heartbeat: a report carries the worker's histograms that changed.
const maxReportBytes = 16 << 20

func (s *server) fleet() (*Fleet, error) {
	if s.Fleet == nil {
		return nil, apierr.Errorf(apierr.CodeNotFound, "this service takes no load workers")
	}
	return s.Fleet, nil
}

// worker is the fleet and the {id} of the path; what is not a UUID names no worker.
func (s *server) worker(r *http.Request) (*Fleet, string, error) {
	f, err := s.fleet()
	if err != nil {
		return nil, "", err
	}
	id, err := uuid.Parse(r.PathValue("id"))
	if err != nil {
		return nil, "", apierr.Errorf(apierr.CodeNotFound, "worker %s is not in the fleet", r.PathValue("id"))
	}
	return f, id.String(), nil
}

// joinFleet registers a worker: {"name"} → 201 worker.
func (s *server) joinFleet(w http.ResponseWriter, r *http.Request) error {
	f, err := s.fleet()
	if err != nil {
		return err
	}
	var in struct {
		Name string `json:"name"`
	}
	body, err := httpedge.ReadBody(w, r, 4<<10)
	if err == nil {
		err = httpedge.DecodeObject(body, &in)
	}
	if err != nil {
		return err
	}
	info, err := f.Register(in.Name)
	if err != nil {
		return err
	}
	service.WriteJSON(w, http.StatusCreated, info)
	return nil
}

// listWorkers → 200 {"workers": [...]}.
func (s *server) listWorkers(w http.ResponseWriter, r *http.Request) error {
	f, err := s.fleet()
	if err != nil {
		return err
	}
	service.WriteJSON(w, http.StatusOK, map[string][]WorkerInfo{"workers": f.Workers()})
	return nil
}

// heartbeat takes a worker's report → 200 orders.
func (s *server) heartbeat(w http.ResponseWriter, r *http.Request) error {
	f, id, err := s.worker(r)
	if err != nil {
		return err
	}
	var rep WorkerReport
	body, err := httpedge.ReadBody(w, r, maxReportBytes)
	if err == nil {
		err = httpedge.DecodeObject(body, &rep)
	}
	if err != nil {
		return err
	}
	orders, err := f.Heartbeat(id, rep)
	if err != nil {
		return err
	}
	if orders.RateChanges == nil {
		orders.RateChanges = []RateChange{}
	}
	service.WriteJSON(w, http.StatusOK, orders)
	return nil
}

// assignment → 200 the worker's part in its run.
func (s *server) assignment(w http.ResponseWriter, r *http.Request) error {
	f, id, err := s.worker(r)
	if err != nil {
		return err
	}
	a, err := f.Assignment(id)
	if err != nil {
		return err
	}
	service.WriteJSON(w, http.StatusOK, a)
	return nil
}
