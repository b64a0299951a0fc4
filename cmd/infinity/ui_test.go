package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/infinity-runtime/infinity/daemon"
	"github.com/infinity-runtime/infinity/internal/emulators/emutest"
)

// The web UI in headless Chromium, driven as a person would: open it with
// the link "infinity ui --print" gives, start the fan-out example from the
// UI, watch its tree grow and finish, open its timeline, send it input,
// answer a user_choice, watch a tool's progress view, and follow a
// transcript live. Screenshots go to $INFINITY_TEST_ARTIFACTS
// (./scripts/test sets it to .artifacts; else the test's temporary
// directory).

// browser starts headless Chromium for one test.
func browser(t *testing.T) context.Context {
	t.Helper()
	path := emutest.Chromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 1000),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-gpu", true),
	)
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	bctx, cancel2 := chromedp.NewContext(actx)
	t.Cleanup(cancel2)
	if err := chromedp.Do(bctx); err != nil { // starts the browser
		t.Fatalf("starting %s: %v", path, err)
	}
	return bctx
}

// uiStep runs actions with a time limit, failing the test with what the
// page showed.
func uiStep(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(sctx, steps...); err != nil {
		shot(t, ctx, "failed-"+strings.ReplaceAll(what, " ", "-"))
		text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
		t.Fatalf("%s: %v\nthe page showed:\n%s", what, err, text)
	}
}

// until waits for a JavaScript predicate.
func until(expr string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		_, err := chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(45*time.Second))(ctx, tg)
		if err != nil {
			return chromedp.Void{}, fmt.Errorf("waiting for %s: %w", expr, err)
		}
		return chromedp.Void{}, nil
	}
}

// clickLive clicks the first element matching selector in the page, once
// it is there: for parts the live updates redraw, where a click by node
// could reach a node already replaced.
func clickLive(selector string) chromedp.Action[chromedp.Void] {
	return until(fmt.Sprintf(`(() => { const e = document.querySelector(%q); if (!e) return false; e.click(); return true; })()`, selector))
}

// startFromUI starts a thread from the "New thread" dialog.
func startFromUI(agent, text string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(
		chromedp.Click(chromedp.CSS("#new-thread")),
		chromedp.WaitVisible(chromedp.CSS("#start-dialog")),
		chromedp.SetValue(chromedp.CSS("#start-agent"), agent),
		chromedp.SendKeys(chromedp.CSS("#start-text"), text),
		chromedp.Click(chromedp.CSS("#start-go")))
}

// shot keeps a screenshot of the page as a test artefact.
func shot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv("INFINITY_TEST_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	}
	b, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Logf("screenshot %s: %v", name, err)
		return
	}
	path := filepath.Join(dir, "ui-"+name+".png")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Logf("screenshot %s: %v", name, err)
		return
	}
	t.Logf("screenshot: %s", path)
}

func TestWebUI(t *testing.T) {
	ctx := browser(t)
	toolURL, _ := startToolbox(t)
	home := t.TempDir()
	serveDaemon(t, home)
	c, _, err := daemon.Dial(home)
	if err != nil {
		t.Fatal(err)
	}
	reg := func(name string, replace ...string) string {
		path := example(t, name, replace...)
		y, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		script, err := os.ReadFile(filepath.Join(filepath.Dir(path), "script.json"))
		if err != nil {
			t.Fatal(err)
		}
		info, err := c.RegisterAgent(t.Context(), daemon.AgentRequest{Origin: path,
			AgentSource: daemon.AgentSource{YAML: string(y), Script: string(script)}})
		if err != nil {
			t.Fatal(err)
		}
		return info.Key
	}
	research := reg("research")
	approval := reg("approval", toolboxURL, toolURL)
	progress := reg("progress", toolboxURL, toolURL)

	link := strings.TrimSpace(cmdOut(t, "ui", "--print"))
	if !strings.Contains(link, "/ui/login?code=") {
		t.Fatalf("ui --print: %q", link)
	}

	uiStep(t, ctx, "open the UI",
		chromedp.Navigate(link),
		until(`document.body.dataset.ready === "true"`),
		until(`document.getElementById("page-info").textContent.includes("of 0")`))
	if loc, _ := chromedp.Run(ctx, chromedp.Location()); strings.Contains(loc, "code=") || strings.Contains(loc, "key=") {
		t.Errorf("the login code or the session's key stays in the address bar: %s", loc)
	}
	shot(t, ctx, "empty")

	// Start the fan-out example from the UI and watch its tree grow.
	uiStep(t, ctx, "start the research example",
		startFromUI(research, "Should we move the office?"),
		until(`document.querySelectorAll("#tree .node").length === 4`),
		until(`document.querySelector("#transcript").innerText.includes("Answer: all three parts are in.")`),
		until(`document.querySelectorAll('#tree [data-status="closed"]').length === 3`),
		until(`document.querySelector('#rows tr [data-status]') !== null`))
	shot(t, ctx, "research-done")

	// Its timeline: one lane per thread, with marks.
	uiStep(t, ctx, "open the timeline",
		chromedp.Click(chromedp.CSS("#tab-timeline")),
		until(`document.querySelectorAll("#timeline g.lane").length === 4`),
		until(`document.querySelectorAll("#timeline circle.mark").length > 10`))
	shot(t, ctx, "timeline")

	// Send input: the research agent tries to split the new question three
	// ways and is told its limit of three children, live.
	uiStep(t, ctx, "send input",
		chromedp.Click(chromedp.CSS("#tab-transcript")),
		chromedp.SendKeys(chromedp.CSS("#input"), "And should we hire?"),
		chromedp.Click(chromedp.CSS("#send button")),
		until(`document.querySelector("#transcript").innerText.includes("And should we hire?")`),
		until(`document.querySelector("#transcript").innerText.includes("a thread may spawn at most 3 children")`),
		until(`document.querySelector("#thread-status").dataset.status === "waiting"`))
	shot(t, ctx, "input")

	// A user_choice: the approval example asks before it deploys.
	uiStep(t, ctx, "answer a choice",
		startFromUI(approval, "Ship v2"),
		until(`document.querySelector("#choices .choice") !== null`),
		until(`document.querySelector("#choices").innerText.includes("Deploy v2 to production?")`))
	shot(t, ctx, "choice")
	uiStep(t, ctx, "click deploy",
		clickLive(`#choices .choice button:first-of-type`),
		until(`document.querySelector("#transcript").innerText.includes("Approved: deploying v2 to production now.")`),
		until(`document.querySelector("#choices .choice") === null`))
	shot(t, ctx, "approved")

	// A long tool's progress view, live, and its result's display segment.
	uiStep(t, ctx, "watch a progress view",
		startFromUI(progress, "Build it"),
		until(`document.querySelector('#views [data-view="progress"]') !== null`),
		until(`document.querySelector("#transcript").innerText.includes("The build finished")`),
		until(`document.querySelector("#transcript .shown") !== null && document.querySelector("#transcript").innerText.includes("build: 5 of 5 steps done")`),
		until(`document.querySelector('#views [data-view="progress"]').innerText.includes('"done": 5')`),
		until(`document.querySelector("#thread-status").textContent === "waiting for input"`))
	shot(t, ctx, "progress")

	// Close it from the UI: the status follows, and the input box and the
	// buttons go grey.
	uiStep(t, ctx, "close a thread",
		chromedp.Click(chromedp.CSS("#close")),
		until(`document.querySelector("#thread-status").dataset.status === "closed"`),
		until(`document.getElementById("input").disabled && document.getElementById("close").disabled`))

	// The list searches by a piece of an agent's key.
	uiStep(t, ctx, "search the list",
		chromedp.SendKeys(chromedp.CSS("#search"), approval[:8]),
		until(`document.querySelectorAll("#rows tr").length === 1`),
		until(`document.getElementById("page-info").textContent.includes("of 1")`))

	// A request from the page without its CSRF header is refused.
	status, err := chromedp.Run(ctx, chromedp.Evaluate[int](`fetch("/v1/threads", {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify({text: "x"})}).then(r => r.status)`, chromedp.EvalAwaitPromise))
	if err != nil || status != 403 {
		t.Errorf("a POST without the CSRF header: status %d, %v; want 403", status, err)
	}
}

// "infinity ui" hands the browser a private page in the home that leads to
// the one-time link, so the code is in no process's arguments; when the
// browser cannot be started it prints a fresh link instead.
func TestUICommand(t *testing.T) {
	home := t.TempDir()
	serveDaemon(t, home)
	seen := filepath.Join(t.TempDir(), "args")
	browserScript := filepath.Join(t.TempDir(), "browser")
	if err := os.WriteFile(browserScript, []byte("#!/bin/sh\necho \"$@\" > "+seen+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("BROWSER", browserScript)
	if out := cmdOut(t, "ui"); !strings.Contains(out, "opened the web UI") {
		t.Fatalf("ui: %q", out)
	}
	arg, err := os.ReadFile(seen)
	if err != nil {
		t.Fatal(err)
	}
	page := filepath.Join(home, "ui-open.html")
	if strings.TrimSpace(string(arg)) != page {
		t.Fatalf("the browser was given %q, want %s", arg, page)
	}
	fi, err := os.Stat(page)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the page: %v, %v", fi, err)
	}
	if b, _ := os.ReadFile(page); !strings.Contains(string(b), "/ui/login?code=") {
		t.Fatalf("the page does not lead to the link: %s", b)
	}

	t.Setenv("BROWSER", "false")
	if out := cmdOut(t, "ui"); !strings.Contains(out, "/ui/login?code=") {
		t.Fatalf("ui without a browser: %q", out)
	}
	t.Setenv("BROWSER", "  ")
	t.Setenv("PATH", t.TempDir()) // no xdg-open either
	if out := cmdOut(t, "ui"); !strings.Contains(out, "/ui/login?code=") {
		t.Fatalf("ui with a blank $BROWSER: %q", out)
	}
}
