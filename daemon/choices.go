package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/actors"
)

// AnswerRequest answers a pending user choice: Choice is a label or a
// zero-based index; Dismiss sends the choice's default instead; ID names
// the choice when several wait.
type AnswerRequest struct {
	Choice  string `json:"choice,omitempty"`
	Dismiss bool   `json:"dismiss,omitempty"`
	ID      string `json:"id,omitempty"`
}

// Answered is what an answer did.
type Answered struct {
	Thread   infinity.ThreadID `json:"thread"`
	ChoiceID string            `json:"choice_id"`
	Selected int               `json:"selected"`
	Label    string            `json:"label"`
}

// CodeToolUnreachable: the tool server did not take the answer.
const CodeToolUnreachable = "tool_unreachable"

// choiceClient posts answers to tool servers.
var choiceClient = &http.Client{Timeout: 30 * time.Second}

// pendingChoices returns the thread's choices that wait for the user.
func (d *Daemon) pendingChoices(ctx context.Context, id infinity.ThreadID) ([]infinity.PendingChoice, error) {
	items, err := d.store.Conversations().Items(ctx, id, 0, -1)
	if err != nil {
		return nil, err
	}
	return actors.PendingChoices(items), nil
}

func (d *Daemon) postAnswer(w http.ResponseWriter, r *http.Request) error {
	id, err := threadID(r)
	if err != nil {
		return err
	}
	var req AnswerRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if req.Dismiss == (req.Choice != "") {
		return apiErr(http.StatusBadRequest, CodeBadRequest, "give either a choice or dismiss")
	}
	choices, err := d.pendingChoices(r.Context(), id)
	if err != nil {
		return err
	}
	c, err := pickChoice(id, choices, req.ID)
	if err != nil {
		return err
	}
	sel := c.Default
	if !req.Dismiss {
		if sel, err = selectLabel(c, req.Choice); err != nil {
			return err
		}
	}
	// RAP: POST {"id","selected"} to the tool's response_url; the tool then
	// sends its result. Nothing is kept or replayed here.
	body, _ := json.Marshal(map[string]any{"id": c.ID, "selected": sel}) // plain values always marshal
	hreq, err := http.NewRequestWithContext(r.Context(), http.MethodPost, c.ResponseURL, bytes.NewReader(body))
	if err != nil {
		return apiErr(http.StatusBadGateway, CodeToolUnreachable, "the choice's response URL %q is unusable: %v", c.ResponseURL, err)
	}
	hreq.Header.Set("Content-Type", "application/json")
	resp, err := choiceClient.Do(hreq)
	if err != nil {
		return apiErr(http.StatusBadGateway, CodeToolUnreachable, "the tool did not take the answer: %v", err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return apiErr(http.StatusBadGateway, CodeToolUnreachable, "the tool answered %s to the choice", resp.Status)
	}
	d.log.Info("user choice answered", "thread", id, "choice", c.ID, "selected", sel)
	writeJSON(w, http.StatusOK, Answered{Thread: id, ChoiceID: c.ID, Selected: sel, Label: c.Choices[sel]})
	return nil
}

// pickChoice finds the choice to answer.
func pickChoice(id infinity.ThreadID, choices []infinity.PendingChoice, want string) (infinity.PendingChoice, error) {
	switch {
	case len(choices) == 0:
		return infinity.PendingChoice{}, apiErr(http.StatusConflict, CodeNoChoice, "thread %s is not waiting for a choice", id)
	case want != "":
		for _, c := range choices {
			if c.ID == want {
				return c, nil
			}
		}
		return infinity.PendingChoice{}, apiErr(http.StatusConflict, CodeNoChoice, "thread %s has no pending choice %q", id, want)
	case len(choices) > 1:
		ids := make([]string, len(choices))
		for i, c := range choices {
			ids[i] = fmt.Sprintf("%s (%q)", c.ID, c.Prompt)
		}
		return infinity.PendingChoice{}, apiErr(http.StatusConflict, CodeConflict, "thread %s waits for %d choices; name one with --id: %s", id, len(choices), strings.Join(ids, ", "))
	}
	return choices[0], nil
}

// selectLabel turns a label (exact, then case-insensitive) or an index into
// an index.
func selectLabel(c infinity.PendingChoice, s string) (int, error) {
	for i, l := range c.Choices {
		if l == s {
			return i, nil
		}
	}
	match := -1
	for i, l := range c.Choices {
		if strings.EqualFold(l, s) {
			if match >= 0 {
				match = -2
				break
			}
			match = i
		}
	}
	if match >= 0 {
		return match, nil
	}
	if n, err := strconv.Atoi(s); err == nil && n >= 0 && n < len(c.Choices) {
		return n, nil
	}
	return 0, apiErr(http.StatusBadRequest, CodeBadRequest, "%q is not one of the choices %q (give a label or an index from 0)", s, c.Choices)
}
