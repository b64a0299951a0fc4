package actors

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	infinity "github.com/infinity-runtime/infinity"
)

// A tree's budget and what it has spent are read from the stored
// histories (infinity.Budget): the root's items hold the budget, every
// model response's item its usage. The engine keeps, per root, what it has
// counted so far and reads only the items added since, so a check costs a
// read of the root's new items and, when the tree has a budget, a walk of
// its threads. A slice of a tree with a budget makes one model call and
// commits it before the next (a continue message starts the next slice),
// so what any slice spent is in the store when another checks. Slices of
// one tree that run at once (other workers, other Lambda invocations) each
// check before their own model call: a tree overspends by at most one
// model call per thread running at that moment.

// maxLedgers bounds the trees whose counts the engine keeps; beyond it one
// is dropped and counted again from the histories when next needed.
const maxLedgers = 4096

// budgetRecheck is how long a tree found without a budget is taken to have
// none without reading its root again. A budget this engine commits (a
// root's first item, a raise) ends it at once; one committed by another
// process (a raise that sets a first budget, applied by another Lambda
// container) reaches this one's checks within this long.
const budgetRecheck = 5 * time.Second

// ledger is what the engine has counted of one tree.
type ledger struct {
	mu sync.Mutex
	// created is the root's creation time: a tree deleted and started
	// again under the same id is another tree, counted afresh.
	created time.Time
	budget  infinity.Budget
	counted map[infinity.ThreadID]int // own items counted, per thread
	spend   infinity.Spend            // USD, Tokens, ModelCalls
	warned  bool                      // a NoticeBudgetWarning is in the tree
	// zeroAt is when the root was last read and had no budget.
	zeroAt time.Time
}

// ledgers are the engine's ledgers by root.
type ledgers struct {
	mu sync.Mutex
	m  map[infinity.ThreadID]*ledger
}

func (ls *ledgers) get(root infinity.ThreadID) *ledger {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.m == nil {
		ls.m = map[infinity.ThreadID]*ledger{}
	}
	l := ls.m[root]
	if l == nil {
		if len(ls.m) >= maxLedgers {
			for k := range ls.m { // any one: it is counted again when needed
				delete(ls.m, k)
				break
			}
		}
		l = &ledger{counted: map[infinity.ThreadID]int{}}
		ls.m[root] = l
	}
	return l
}

// TreeBudget is a tree's budget and what it has spent.
type TreeBudget struct {
	Budget infinity.Budget `json:"budget"`
	Spend  infinity.Spend  `json:"spend"`
	// Spent names the cap reached ("" when none): the tree's threads call
	// no model until it is raised.
	Spent string `json:"spent,omitempty"`
	// Warned says the tree was warned (infinity.BudgetWarnAt of a cap).
	Warned bool `json:"warned,omitempty"`
}

// TreeBudget reads the budget of the tree whose root is root and what it
// has spent, from the stored histories; a tree without a budget is not
// read beyond its root (its Spend is empty).
func (rt *Runtime) TreeBudget(ctx context.Context, root infinity.ThreadID) (TreeBudget, error) {
	info, err := rt.cfg.Conversations.Thread(ctx, root)
	if err != nil {
		return TreeBudget{}, fmt.Errorf("budget %s: %w", root, err)
	}
	return rt.TreeBudgetOf(ctx, info)
}

// TreeBudgetOf is TreeBudget for a root whose info the caller has read.
func (rt *Runtime) TreeBudgetOf(ctx context.Context, root infinity.ThreadInfo) (TreeBudget, error) {
	if !root.IsRoot() {
		return TreeBudget{}, fmt.Errorf("budget %s: not a root thread (a budget belongs to a whole tree: ask its root, %s): %w", root.ID, root.Root, infinity.ErrInvalid)
	}
	return rt.eng.treeBudget(ctx, root, false)
}

// treeBudget brings root's ledger up to date and returns it; without
// walk, a tree without a budget is not walked (its Spend is then empty).
func (e *engine) treeBudget(ctx context.Context, root infinity.ThreadInfo, walk bool) (TreeBudget, error) {
	l := e.budgets.get(root.ID)
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.created.Equal(root.Created) { // a new tree under this id: count afresh
		l.created, l.budget, l.spend, l.warned, l.zeroAt = root.Created, infinity.Budget{}, infinity.Spend{}, false, time.Time{}
		l.counted = map[infinity.ThreadID]int{}
	}
	now := e.cfg.Clock.Now()
	if !walk && l.budget.IsZero() && !l.zeroAt.IsZero() && now.Sub(l.zeroAt) < budgetRecheck {
		return TreeBudget{}, nil // most trees have no budget: no read per model call
	}
	// The root's items first: they hold the budget.
	if err := e.count(ctx, l, root, true); err != nil {
		return TreeBudget{}, err
	}
	if l.budget.IsZero() && !walk {
		l.zeroAt = now
		return TreeBudget{}, nil
	}
	live := 0
	if !root.Closed {
		live = 1
	}
	var walkKids func(id infinity.ThreadID) error
	walkKids = func(id infinity.ThreadID) error {
		kids, err := e.cfg.Conversations.Children(ctx, id)
		if err != nil {
			return err
		}
		for _, k := range kids {
			if !k.Closed {
				live++
			}
			if err := e.count(ctx, l, k, false); err != nil {
				return err
			}
			if err := walkKids(k.ID); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walkKids(root.ID); err != nil {
		return TreeBudget{}, fmt.Errorf("budget %s: %w", root.ID, err)
	}
	s := l.spend
	s.LiveThreads = live
	s.Wall = e.cfg.Clock.Now().Sub(root.Created)
	return TreeBudget{Budget: l.budget, Spend: s, Spent: l.budget.Spent(s), Warned: l.warned}, nil
}

// count adds the thread's items not counted yet to l (l.mu held); the
// root's (isRoot) add to the budget too.
func (e *engine) count(ctx context.Context, l *ledger, t infinity.ThreadInfo, isRoot bool) error {
	id := t.ID
	from := l.counted[id]
	items, err := e.cfg.Conversations.Items(ctx, id, from, -1)
	if err != nil {
		return fmt.Errorf("budget: %w", err)
	}
	for _, it := range items {
		if it.Usage != nil {
			l.spend.ModelCalls++
			l.spend.Tokens += int64(it.Usage.Input + it.Usage.Output)
			if e.cfg.Prices != nil {
				if usd, ok := e.cfg.Prices(t.Agent, it.Model, *it.Usage); ok {
					l.spend.USD += usd
				}
			}
		}
		if it.Notice == infinity.NoticeBudgetWarning {
			l.warned = true
		}
		if isRoot && it.Budget != nil {
			l.budget = l.budget.Add(*it.Budget)
		}
	}
	l.counted[id] = from + len(items)
	return nil
}

// budgetCheck runs before each model call of a slice: it stops the thread
// (a NoticeBudgetSpent item; the thread goes on when the budget is
// raised) when its tree's budget is spent, counting this slice's responses
// not yet committed, and warns the tree once when it has used
// infinity.BudgetWarnAt of a cap.
func (r *run) budgetCheck(ctx context.Context) (stop bool, err error) {
	tb, err := r.treeBudget(ctx)
	if err != nil {
		return false, err
	}
	if tb.Budget.IsZero() {
		return false, nil
	}
	r.budgeted = true
	n := r.ownLen()
	if spent := tb.Budget.Spent(tb.Spend); spent != "" {
		r.append(infinity.Item{ID: positionID("budget_", r.self.ID, n), Kind: infinity.KindUser, Notice: infinity.NoticeBudgetSpent,
			Text: fmt.Sprintf("[budget] The budget of this thread tree is spent (%s; the budget is %s). No model call was made; the tree goes on when the budget is raised.", spent, tb.Budget)})
		return true, nil
	}
	if !tb.Warned && tb.Budget.Used(tb.Spend) >= infinity.BudgetWarnAt {
		r.append(infinity.Item{ID: positionID("budget_", r.self.ID, n), Kind: infinity.KindUser, Notice: infinity.NoticeBudgetWarning,
			Text: fmt.Sprintf("[budget] This thread tree has used %.0f%% of a cap of its budget (%s): spend what is left with care.", 100*tb.Budget.Used(tb.Spend), tb.Budget)})
	}
	return false, nil
}

// treeBudget is the tree's budget and spend as the engine counted them from
// the store, with what this slice added and has not committed yet: the
// responses' usage, a warning, the children it spawned, and, on the root,
// the budget its first message or a raise brought.
func (r *run) treeBudget(ctx context.Context) (TreeBudget, error) {
	walk := false
	if r.self.IsRoot() && r.hist.Start == 0 && r.hist.Summary == nil {
		// A root whose whole history is loaded (not compacted) holds its
		// budget in it: without one there, it has none, and nothing needs
		// reading; with one, the tree is read whatever the engine took it
		// for before (and never noted as without one: the budget may not
		// be committed yet).
		if !slices.ContainsFunc(r.items, func(it infinity.Item) bool { return it.Budget != nil }) {
			return TreeBudget{}, nil
		}
		walk = true
	}
	tb, err := r.e.treeBudget(ctx, r.hist.Lineage[0], walk)
	if err != nil {
		return tb, fmt.Errorf("slice %s: %w", r.self.ID, err)
	}
	for _, it := range r.commit.Items {
		if r.self.IsRoot() && it.Budget != nil {
			tb.Budget = tb.Budget.Add(*it.Budget)
		}
	}
	if tb.Budget.IsZero() {
		return tb, nil
	}
	if tb.Spend.LiveThreads == 0 { // the walk was skipped: no budget was stored yet
		if tb, err = r.e.treeBudget(ctx, r.hist.Lineage[0], true); err != nil {
			return tb, fmt.Errorf("slice %s: %w", r.self.ID, err)
		}
		for _, it := range r.commit.Items {
			if r.self.IsRoot() && it.Budget != nil {
				tb.Budget = tb.Budget.Add(*it.Budget)
			}
		}
	}
	for _, it := range r.commit.Items {
		switch {
		case it.Usage != nil:
			tb.Spend.ModelCalls++
			tb.Spend.Tokens += int64(it.Usage.Input + it.Usage.Output)
			if r.e.cfg.Prices != nil {
				if usd, ok := r.e.cfg.Prices(r.self.Agent, it.Model, *it.Usage); ok {
					tb.Spend.USD += usd
				}
			}
		case it.Notice == infinity.NoticeBudgetWarning:
			tb.Warned = true
		}
	}
	tb.Spend.LiveThreads += len(r.commit.Create)
	tb.Spent = tb.Budget.Spent(tb.Spend)
	return tb, nil
}

// budgetRaised applies a SyntheticBudget input. A thread that the budget
// stopped (its last item says so) goes on, with a NoticeBudgetRaised item
// (on the root, carrying what the budget was raised by). The root also
// tells every thread of its tree that the budget stopped.
func (r *run) budgetRaised(ctx context.Context) error {
	isRoot := r.self.IsRoot()
	stopped := r.stoppedBefore
	if !isRoot && !stopped {
		return nil // raised again, or the thread went on otherwise
	}
	for _, m := range r.raised {
		text := "[budget] The budget of this thread tree was raised"
		if isRoot && m.Budget != nil {
			text += " by " + m.Budget.String()
		}
		it := infinity.Item{ID: string(m.ID), Kind: infinity.KindUser, Notice: infinity.NoticeBudgetRaised, Text: text + "; go on with your task."}
		if isRoot {
			it.Budget = m.Budget // each raise counts (several may come in one batch)
		}
		r.append(it)
		if !isRoot {
			break // a stopped thread goes on once
		}
	}
	if stopped {
		r.actionable = true
	}
	if !isRoot {
		return nil
	}
	m := r.raised[len(r.raised)-1] // the tree is told once
	ids, err := r.subtree(ctx)
	if err != nil {
		return fmt.Errorf("slice %s: budget: %w", r.self.ID, err)
	}
	for _, id := range ids[1:] {
		// Every open thread is told: one that the budget stopped goes on,
		// the others ignore it. (A thread whose slice is deciding "spent"
		// right now, against the budget before this raise, commits its
		// notice before it applies this message.)
		r.send(infinity.DeriveID("budget_", string(m.ID), string(id)), infinity.InputMessage{GroupID: id,
			Content: infinity.TextContent(""), Synthetic: &infinity.Synthetic{Type: infinity.SyntheticBudget}}, time.Time{})
	}
	return nil
}

// budgetCommitted ends the "no budget" reading of root's tree: a commit of
// this engine gave it a budget.
func (e *engine) budgetCommitted(root infinity.ThreadID) {
	l := e.budgets.get(root)
	l.mu.Lock()
	l.zeroAt = time.Time{}
	l.mu.Unlock()
}

// sameBudget says whether two optional budgets are the same.
func sameBudget(a, b *infinity.Budget) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// budgetString is an optional budget for messages.
func budgetString(b *infinity.Budget) string {
	if b == nil {
		return "none"
	}
	return b.String()
}

// StoppedByBudget says whether a history ends with its tree's budget
// stopping it (a NoticeBudgetSpent item): the thread waits for a raise.
func StoppedByBudget(items []infinity.Item) bool {
	return len(items) > 0 && items[len(items)-1].Notice == infinity.NoticeBudgetSpent
}

// BudgetNote says whether an item is the runtime's note about the budget
// that asks nothing of the thread (a raise or a warning): readers of a
// thread's state look past it.
func BudgetNote(it *infinity.Item) bool {
	return it.Notice == infinity.NoticeBudgetRaised || it.Notice == infinity.NoticeBudgetWarning
}

// RaiseBudget raises the budget of the tree whose root is root by add
// (which may set a first budget): the root records it, and every thread
// of the tree that the budget stopped goes on. id makes a retry harmless
// ("" makes a new one). It returns the message's id.
func (rt *Runtime) RaiseBudget(ctx context.Context, root infinity.ThreadID, add infinity.Budget, id infinity.MessageID) (infinity.MessageID, error) {
	if err := add.Validate(); err != nil {
		return "", fmt.Errorf("raise budget of %s: %w", root, err)
	}
	if add.IsZero() {
		return "", fmt.Errorf("raise budget of %s: nothing to add: %w", root, infinity.ErrInvalid)
	}
	info, err := rt.cfg.Conversations.Thread(ctx, root)
	if err != nil {
		return "", fmt.Errorf("raise budget of %s: %w", root, err)
	}
	if !info.IsRoot() {
		return "", fmt.Errorf("raise budget of %s: not a root thread (a budget belongs to a whole tree: raise its root's, %s): %w", root, info.Root, infinity.ErrInvalid)
	}
	if info.Closed {
		return "", fmt.Errorf("raise budget of %s: %w", root, infinity.ErrClosed)
	}
	if id == "" {
		id = infinity.NewMessageID()
	}
	msg := infinity.InputMessage{ID: id, GroupID: root, Content: infinity.TextContent(""),
		Synthetic: &infinity.Synthetic{Type: infinity.SyntheticBudget}, Budget: &add}
	if err := rt.sender.Send(ctx, msg, time.Time{}); err != nil {
		return "", fmt.Errorf("raise budget of %s: %w", root, err)
	}
	return id, nil
}
