package infinity

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// Budget caps what a tree of threads (a root and every thread below it)
// may spend. Zero fields set no cap. A root's budget is the sum of the
// Budget of its first item (set when it starts) and of every raise in its
// history (Item.Budget on a NoticeBudgetRaised item), so it lives in the
// stored history like everything else: it survives restarts, travels with
// an export and holds in the cloud functions.
type Budget struct {
	// USD caps the tree's model cost, from the price table; calls to a
	// model without a price count as free.
	USD float64 `json:"usd,omitempty"`
	// Tokens caps input plus output tokens.
	Tokens int64 `json:"tokens,omitempty"`
	// ModelCalls caps the model responses.
	ModelCalls int64 `json:"model_calls,omitempty"`
	// Wall caps the time since the root was created.
	Wall time.Duration `json:"wall,omitempty"`
	// MaxThreads caps the threads of the tree that are not closed, the
	// root included: spawn_thread fails beyond it.
	MaxThreads int `json:"max_threads,omitempty"`
}

// IsZero reports whether b caps nothing.
func (b Budget) IsZero() bool { return b == Budget{} }

// Add returns b raised by o, field by field.
func (b Budget) Add(o Budget) Budget {
	return Budget{USD: b.USD + o.USD, Tokens: b.Tokens + o.Tokens, ModelCalls: b.ModelCalls + o.ModelCalls,
		Wall: b.Wall + o.Wall, MaxThreads: b.MaxThreads + o.MaxThreads}
}

// Validate refuses negative fields and a USD cap that is not a finite
// number (ErrInvalid).
func (b Budget) Validate() error {
	if math.IsNaN(b.USD) || math.IsInf(b.USD, 0) {
		return fmt.Errorf("budget: usd %v is not a number of dollars: %w", b.USD, ErrInvalid)
	}
	if b.USD < 0 || b.Tokens < 0 || b.ModelCalls < 0 || b.Wall < 0 || b.MaxThreads < 0 {
		return fmt.Errorf("budget %s: a negative cap: %w", b, ErrInvalid)
	}
	return nil
}

// String lists the caps, as "infinity budget" takes them ("5usd
// 100000tokens 50calls 2h0m0s 10threads"); "none" when there is none.
func (b Budget) String() string {
	var parts []string
	if b.USD > 0 {
		parts = append(parts, fmt.Sprintf("%gusd", b.USD))
	}
	if b.Tokens > 0 {
		parts = append(parts, fmt.Sprintf("%dtokens", b.Tokens))
	}
	if b.ModelCalls > 0 {
		parts = append(parts, fmt.Sprintf("%dcalls", b.ModelCalls))
	}
	if b.Wall > 0 {
		parts = append(parts, b.Wall.String())
	}
	if b.MaxThreads > 0 {
		parts = append(parts, fmt.Sprintf("%dthreads", b.MaxThreads))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, " ")
}

// Spend is what a tree has used of its budget.
type Spend struct {
	USD        float64       `json:"usd"`
	Tokens     int64         `json:"tokens"`
	ModelCalls int64         `json:"model_calls"`
	Wall       time.Duration `json:"wall"`
	// LiveThreads are the tree's threads that are not closed.
	LiveThreads int `json:"live_threads"`
}

// Spent names the first cap of b that s has reached ("" when none), with
// both figures: "tokens: 10230 of 10000". Live threads stop no model call:
// MaxThreads only bounds spawning.
func (b Budget) Spent(s Spend) string {
	switch {
	case b.USD > 0 && s.USD >= b.USD:
		return fmt.Sprintf("usd: %.4f of %g", s.USD, b.USD)
	case b.Tokens > 0 && s.Tokens >= b.Tokens:
		return fmt.Sprintf("tokens: %d of %d", s.Tokens, b.Tokens)
	case b.ModelCalls > 0 && s.ModelCalls >= b.ModelCalls:
		return fmt.Sprintf("model calls: %d of %d", s.ModelCalls, b.ModelCalls)
	case b.Wall > 0 && s.Wall >= b.Wall:
		return fmt.Sprintf("wall time: %s of %s", s.Wall.Round(time.Second), b.Wall)
	}
	return ""
}

// Used is the largest share of a cap that s has used (0 without caps);
// MaxThreads does not count.
func (b Budget) Used(s Spend) float64 {
	f := 0.0
	share := func(used, cap float64) {
		if cap > 0 && used/cap > f {
			f = used / cap
		}
	}
	share(s.USD, b.USD)
	share(float64(s.Tokens), float64(b.Tokens))
	share(float64(s.ModelCalls), float64(b.ModelCalls))
	share(float64(s.Wall), float64(b.Wall))
	return f
}

// BudgetWarnAt is the share of a cap at which a tree is warned once.
const BudgetWarnAt = 0.8

// Notices: history items the runtime adds about the tree's budget
// (Item.Notice; their Kind is KindUser, so the model reads them too).
const (
	// NoticeBudgetSpent: the thread stopped calling its model because the
	// tree's budget is spent; it goes on when the budget is raised.
	NoticeBudgetSpent = "budget_spent"
	// NoticeBudgetRaised: the budget was raised (by Item.Budget, on the
	// root) and the thread goes on.
	NoticeBudgetRaised = "budget_raised"
	// NoticeBudgetWarning: the tree has used BudgetWarnAt of a cap.
	NoticeBudgetWarning = "budget_warning"
)
