package e2e

import (
	"fmt"
	"net/http"
	"testing"
	"time"
	"txn/internal/testenv"
)

// TestPipelineCarriesHolds checks that a hold's life reaches every read model: analytics count
// holds, captures, voids and expiries by kind (the total only what moved money), the payer's
// activity shows each, and a capture notifies both sides as a transfer does.
func TestPipelineCarriesHolds(t *testing.T) {
	pl := startPipeline(t, 1)
	tasks := pl.drainTasks(t)
	alice, bob := pl.admin.CreateUser(t, "holder"), pl.admin.CreateUser(t, "merchant")
	a, b := pl.admin.CreateAccount(t, alice.ID, "USD"), pl.admin.CreateAccount(t, bob.ID, "USD")
	var deposit struct{ ID string }
	pl.admin.Must(t, http.StatusCreated, "POST", "/transactions", map[string]any{
		"type": "deposit", "to_account_id": a, "amount": 10_000, "currency": "USD"}).JSON(t, &deposit)
	hold := func(body map[string]any) string {
		var h struct{ ID string }
		pl.admin.Must(t, http.StatusCreated, "POST", "/holds", body).JSON(t, &h)
		return h.ID
	}
	captured := hold(map[string]any{"from_account_id": a, "to_account_id": b, "amount": 500, "currency": "USD"})
	var capture struct{ ID string }
	pl.admin.Must(t, http.StatusCreated, "POST", "/holds/"+captured+"/capture", map[string]any{"amount": 300}).JSON(t, &capture)
	voided := hold(map[string]any{"from_account_id": a, "amount": 200, "currency": "USD"})
	pl.admin.Must(t, http.StatusOK, "POST", "/holds/"+voided+"/void", nil)
	hold(map[string]any{"from_account_id": a, "amount": 100, "currency": "USD", "expires_in_s": 1})

	type analytics struct {
		Total  struct{ Count, Volume int64 }
		ByType []struct {
			Type   string
			Count  int64
			Volume int64
		} `json:"by_type"`
	}
	var got analytics
	kinds := func() map[string]int64 {
		m := map[string]int64{}
		for _, bt := range got.ByType {
			m[bt.Type] += bt.Count
		}
		return m
	}
	want := map[string]int64{"deposit": 1, "hold": 3, "capture": 1, "hold_voided": 1, "hold_expired": 1}
	testenv.Eventually(t, 30*time.Second, func() string {
		pl.admin.Must(t, http.StatusOK, "GET", "/admin/analytics", nil).JSON(t, &got)
		if k := kinds(); fmt.Sprint(k) != fmt.Sprint(want) {
			return fmt.Sprintf("analytics by kind %v, want %v", k, want)
		}
		return ""
	})
	t.Run("the total counts only what moved money", func(t *testing.T) {
		if got.Total.Count != 2 || got.Total.Volume != 10_300 {
			t.Errorf("total %+v, want the deposit and the capture: 2 moving 10300", got.Total)
		}
	})
	t.Run("the payer's activity shows the hold's life", func(t *testing.T) {
		var feed struct {
			Data []struct {
				Type   string
				Amount int64
			}
		}
		pl.admin.Must(t, http.StatusOK, "GET", "/users/"+alice.ID+"/activity?limit=20", nil).JSON(t, &feed)
		seen := map[string]int{}
		for _, it := range feed.Data {
			seen[it.Type]++
		}
		if seen["hold"] != 3 || seen["capture"] != 1 || seen["hold_voided"] != 1 || seen["hold_expired"] != 1 {
			t.Errorf("activity kinds %v, want 3 holds, a capture, a void and an expiry", seen)
		}
	})
	t.Run("a capture notifies both sides; a hold's events notify no one", func(t *testing.T) {
		// The deposit's task and the capture's two, as of a transfer. The capture's event comes
		// after its hold's in the payer's partition: a task of the hold would be seen first.
		want := fmt.Sprint(map[string][]string{deposit.ID: {"deposit_received"},
			capture.ID: {"transfer_received", "transfer_sent"}})
		testenv.Eventually(t, 30*time.Second, func() string {
			if got := fmt.Sprint(tasks.kindsOf()); got != want {
				return fmt.Sprintf("tasks by transaction %s, want %s", got, want)
			}
			return ""
		})
	})
}
