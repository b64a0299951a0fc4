package main

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/actors"
	"github.com/infinity-runtime/infinity/daemon"
)

const budgetLong = `Shows the budget of the tree whose root is THREAD and what the tree has
spent: model cost (USD, from the price table), tokens, model calls, wall
time since the root started, and threads that are not closed. With --add,
raises it (or sets a first one); the threads the budget stopped go on.

A budget is set when a root starts ("infinity run --budget 5usd ...").
Before each model call the engine compares what the tree spent with it;
a tree that reached a cap calls no more models: each thread that would
gets an entry in its history saying so and shows over_budget in "infinity
ls", and nothing else is lost. At 80 % of a cap the tree is warned once
(an entry in the history of the thread that crossed it). Threads of a tree
that run at the same time each may make the one call they checked for,
so a tree ends at most one model call per running thread over its cap.

SPEC is one cap or several, separated by commas or given with the flag
again: 5usd (or $5), 200000tokens (200k tokens: 200ktokens), 50calls,
a Go duration of wall time (2h, 90m), 10threads.`

func (a *app) budgetCommand() *cobra.Command {
	var (
		add    []string
		id     string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:               "budget [flags] THREAD",
		Short:             "show or raise a tree's budget (cost, tokens, calls, time, threads)",
		Long:              budgetLong,
		Args:              argsBetween(1, 1, "THREAD"),
		ValidArgsFunction: a.completeThreads(func(v daemon.ThreadView) bool { return v.Parent == "" }),
		RunE: func(cmd *cobra.Command, pos []string) error {
			root := infinity.ThreadID(pos[0])
			var raise infinity.Budget
			if len(add) > 0 {
				b, err := parseBudget(add)
				if err != nil {
					return usagef("budget: --add: %v", err)
				}
				raise = b
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if len(add) > 0 {
				if _, err := c.RaiseBudget(ctx, root, daemon.BudgetRequest{Add: raise, ID: infinity.MessageID(id)}); err != nil {
					return fmt.Errorf("budget: %w", err)
				}
				if !asJSON {
					fmt.Fprintf(cmd.OutOrStdout(), "raised the budget of %s by %s\n", root, raise)
				}
			}
			tb, err := c.Budget(ctx, root)
			if err != nil {
				return fmt.Errorf("budget: %w", err)
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), tb)
			}
			printBudget(cmd.OutOrStdout(), tb, len(add) > 0)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&add, "add", nil, "raise the budget by SPEC (5usd, 200000tokens, 50calls, 2h, 10threads; repeat or separate with commas)")
	f.StringVar(&id, "id", "", "a message id that makes a retried raise harmless")
	f.BoolVar(&asJSON, "json", false, "print the budget and what the tree spent as JSON")
	_ = cmd.RegisterFlagCompletionFunc("add", cobra.NoFileCompletions)
	_ = cmd.RegisterFlagCompletionFunc("id", cobra.NoFileCompletions)
	return cmd
}

// printBudget writes a tree's budget for people; raised says a raise was
// just sent (the threads it wakes take a moment).
func printBudget(w io.Writer, tb actors.TreeBudget, raised bool) {
	if tb.Budget.IsZero() {
		fmt.Fprintln(w, "no budget: the tree spends without a cap (set one with --add)")
		return
	}
	b, s := tb.Budget, tb.Spend
	row := func(what, used, capv string, set bool) {
		if set {
			fmt.Fprintf(w, "  %-12s %s of %s\n", what, used, capv)
		}
	}
	fmt.Fprintln(w, "budget (spent of cap):")
	row("cost", fmt.Sprintf("%.4f USD", s.USD), fmt.Sprintf("%g USD", b.USD), b.USD > 0)
	row("tokens", strconv.FormatInt(s.Tokens, 10), strconv.FormatInt(b.Tokens, 10), b.Tokens > 0)
	row("model calls", strconv.FormatInt(s.ModelCalls, 10), strconv.FormatInt(b.ModelCalls, 10), b.ModelCalls > 0)
	row("wall time", s.Wall.Round(time.Second).String(), b.Wall.String(), b.Wall > 0)
	row("threads", strconv.Itoa(s.LiveThreads), strconv.Itoa(b.MaxThreads), b.MaxThreads > 0)
	switch {
	case raised:
		// The root applies the raise in a moment: what it shows now may
		// not have it yet.
	case tb.Spent != "":
		fmt.Fprintf(w, "spent (%s): the tree calls no model until the budget is raised (--add)\n", tb.Spent)
	case tb.Warned:
		fmt.Fprintf(w, "warned: the tree has used over %.0f%% of a cap\n", 100*infinity.BudgetWarnAt)
	}
}

// parseBudget reads budget specs: "5usd", "$5", "200000tokens",
// "200ktokens", "50calls", "2h", "10threads", several per string
// separated by commas. A cap given twice adds up.
func parseBudget(specs []string) (infinity.Budget, error) {
	var b infinity.Budget
	for _, spec := range specs {
		for _, part := range strings.Split(spec, ",") {
			p := strings.ToLower(strings.ReplaceAll(strings.TrimSpace(part), " ", ""))
			if p == "" {
				continue
			}
			add, err := parseCap(p)
			if err != nil {
				return b, fmt.Errorf("%q: %w", strings.TrimSpace(part), err)
			}
			b = b.Add(add)
		}
	}
	if b.IsZero() {
		return b, fmt.Errorf("no cap given (such as 5usd, 200000tokens, 50calls, 2h or 10threads)")
	}
	return b, nil
}

func parseCap(p string) (infinity.Budget, error) {
	count := func(s string) (int64, error) {
		mult := int64(1)
		switch {
		case strings.HasSuffix(s, "k"):
			s, mult = strings.TrimSuffix(s, "k"), 1000
		case strings.HasSuffix(s, "m"):
			s, mult = strings.TrimSuffix(s, "m"), 1000000
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 || n > math.MaxInt64/mult {
			return 0, fmt.Errorf("want a positive whole number (at most %d)", math.MaxInt64/mult)
		}
		return n * mult, nil
	}
	switch {
	case strings.HasPrefix(p, "$") || strings.HasSuffix(p, "usd"):
		v, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimPrefix(p, "$"), "usd"), 64)
		if err != nil || v <= 0 || math.IsNaN(v) || math.IsInf(v, 0) {
			return infinity.Budget{}, fmt.Errorf("want a positive amount of USD, such as 5usd")
		}
		return infinity.Budget{USD: v}, nil
	case strings.HasSuffix(p, "tokens"):
		n, err := count(strings.TrimSuffix(p, "tokens"))
		return infinity.Budget{Tokens: n}, err
	case strings.HasSuffix(p, "calls"):
		n, err := count(strings.TrimSuffix(p, "calls"))
		return infinity.Budget{ModelCalls: n}, err
	case strings.HasSuffix(p, "threads"):
		n, err := count(strings.TrimSuffix(p, "threads"))
		return infinity.Budget{MaxThreads: int(n)}, err
	}
	d, err := time.ParseDuration(p)
	if err != nil || d <= 0 {
		return infinity.Budget{}, fmt.Errorf("want 5usd, 200000tokens, 50calls, a duration such as 2h, or 10threads")
	}
	return infinity.Budget{Wall: d}, nil
}

// budgetOf reads run --budget's specs (nil when none were given).
func budgetOf(specs []string) (*infinity.Budget, error) {
	if len(specs) == 0 {
		return nil, nil
	}
	b, err := parseBudget(specs)
	if err != nil {
		return nil, usagef("run: --budget: %v", err)
	}
	return &b, nil
}
