package schedulerlocal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/infinity-runtime/infinity"
)

// SQSAPI is the part of the SQS client the stand-in fires schedules with.
type SQSAPI interface {
	GetQueueUrl(ctx context.Context, in *awssqs.GetQueueUrlInput, optFns ...func(*awssqs.Options)) (*awssqs.GetQueueUrlOutput, error)
	SendMessage(ctx context.Context, in *awssqs.SendMessageInput, optFns ...func(*awssqs.Options)) (*awssqs.SendMessageOutput, error)
}

// Schedule is a schedule as the API carries it: the CreateSchedule request
// body (plus Name and GroupName) and the GetSchedule response.
type Schedule struct {
	Name                       string              `json:"Name,omitempty"`
	GroupName                  string              `json:"GroupName,omitempty"`
	Arn                        string              `json:"Arn,omitempty"`
	ScheduleExpression         string              `json:"ScheduleExpression,omitempty"`
	ScheduleExpressionTimezone string              `json:"ScheduleExpressionTimezone,omitempty"`
	FlexibleTimeWindow         *FlexibleTimeWindow `json:"FlexibleTimeWindow,omitempty"`
	ActionAfterCompletion      string              `json:"ActionAfterCompletion,omitempty"`
	State                      string              `json:"State,omitempty"`
	Description                string              `json:"Description,omitempty"`
	// ClientToken is kept for idempotency; GetSchedule does not return it.
	ClientToken          string  `json:"ClientToken,omitempty"`
	Target               *Target `json:"Target,omitempty"`
	CreationDate         float64 `json:"CreationDate,omitempty"`
	LastModificationDate float64 `json:"LastModificationDate,omitempty"`
}

// FlexibleTimeWindow is the schedule's window; the stand-in always fires at
// the start of it.
type FlexibleTimeWindow struct {
	Mode                   string `json:"Mode,omitempty"`
	MaximumWindowInMinutes int    `json:"MaximumWindowInMinutes,omitempty"`
}

// Target is a schedule's target; only SQS queues are supported.
type Target struct {
	Arn           string         `json:"Arn,omitempty"`
	RoleArn       string         `json:"RoleArn,omitempty"`
	Input         string         `json:"Input,omitempty"`
	SqsParameters *SqsParameters `json:"SqsParameters,omitempty"`
}

// SqsParameters carries the FIFO message group.
type SqsParameters struct {
	MessageGroupId string `json:"MessageGroupId,omitempty"`
}

// Option configures a Server.
type Option func(*Server)

// WithClock sets the clock schedules are timed on (default
// infinity.SystemClock{}).
func WithClock(c infinity.Clock) Option {
	return func(s *Server) {
		if c != nil {
			s.clock = c
		}
	}
}

// WithTimeScale multiplies every wait (until a schedule's time, between
// retries) by f: 0.001 fires a schedule due in 20 minutes after 1.2 s. The
// schedules themselves keep their real times. Non-positive values are
// ignored (default 1).
func WithTimeScale(f float64) Option {
	return func(s *Server) {
		if f > 0 {
			s.scale = f
		}
	}
}

// WithLogger sets where failed firings are logged (default slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return func(s *Server) {
		if l != nil {
			s.log = l
		}
	}
}

// WithAttempts sets how many times a firing is tried before it is dropped
// (default 5), with a backoff of 1 s doubling (scaled).
func WithAttempts(n int) Option {
	return func(s *Server) {
		if n > 0 {
			s.attempts = n
		}
	}
}

// Server is the stand-in. It is safe for concurrent use.
type Server struct {
	sqs      SQSAPI
	clock    infinity.Clock
	scale    float64
	log      *slog.Logger
	attempts int
	region   string
	account  string
	mux      *http.ServeMux
	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup

	mu        sync.Mutex
	stopped   bool
	schedules map[key]*entry
	created   []Schedule
	fired     []Schedule
}

type key struct{ group, name string }

type entry struct {
	s    Schedule
	at   time.Time
	stop func() bool
}

// New returns a stand-in that fires schedules through client.
func New(client SQSAPI, opts ...Option) *Server {
	s := &Server{
		sqs:       client,
		clock:     infinity.SystemClock{},
		scale:     1,
		log:       slog.Default(),
		attempts:  5,
		region:    "us-east-1",
		account:   "000000000000",
		schedules: make(map[key]*entry),
	}
	for _, o := range opts {
		o(s)
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("POST /schedules/{name}", s.create)
	s.mux.HandleFunc("GET /schedules/{name}", s.get)
	s.mux.HandleFunc("DELETE /schedules/{name}", s.delete)
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "UnknownOperationException", "the Scheduler stand-in does not implement "+r.Method+" "+r.URL.Path)
	})
	return s
}

// ServeHTTP serves the Scheduler API subset.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Stop cancels every pending schedule and waits for firings in progress to
// give up; later requests get an InternalServerException.
func (s *Server) Stop() {
	s.mu.Lock()
	s.stopped = true
	for _, e := range s.schedules {
		if e.stop != nil {
			e.stop()
		}
	}
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
}

// Created returns every schedule a CreateSchedule created, in order,
// including those that have since fired or been deleted.
func (s *Server) Created() []Schedule {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Schedule(nil), s.created...)
}

// Fired returns every schedule that fired successfully, in order.
func (s *Server) Fired() []Schedule {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Schedule(nil), s.fired...)
}

// Len returns how many schedules exist now.
func (s *Server) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.schedules)
}

const maxBody = 1 << 20

func (s *Server) create(w http.ResponseWriter, r *http.Request) {
	var sc Schedule
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody)).Decode(&sc); err != nil {
		writeError(w, http.StatusBadRequest, "ValidationException", "malformed request body: "+err.Error())
		return
	}
	sc.Name = r.PathValue("name")
	if sc.GroupName == "" {
		sc.GroupName = "default"
	}
	at, err := validate(&sc)
	if err != nil {
		writeError(w, http.StatusBadRequest, "ValidationException", err.Error())
		return
	}
	now := s.clock.Now()
	sc.Arn = fmt.Sprintf("arn:aws:scheduler:%s:%s:schedule/%s/%s", s.region, s.account, sc.GroupName, sc.Name)
	sc.CreationDate = epoch(now)
	sc.LastModificationDate = sc.CreationDate

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		writeError(w, http.StatusInternalServerError, "InternalServerException", "the Scheduler stand-in is stopped")
		return
	}
	k := key{sc.GroupName, sc.Name}
	if old := s.schedules[k]; old != nil {
		if sc.ClientToken != "" && old.s.ClientToken == sc.ClientToken {
			writeJSON(w, map[string]string{"ScheduleArn": old.s.Arn})
			return
		}
		writeError(w, http.StatusConflict, "ConflictException", fmt.Sprintf("schedule %s already exists in group %s", sc.Name, sc.GroupName))
		return
	}
	e := &entry{s: sc, at: at}
	s.schedules[k] = e
	s.created = append(s.created, sc)
	if sc.State != "DISABLED" {
		e.stop = s.clock.AfterFunc(s.scaled(at.Sub(now)), func() { s.fire(k, e) })
	}
	writeJSON(w, map[string]string{"ScheduleArn": sc.Arn})
}

func (s *Server) get(w http.ResponseWriter, r *http.Request) {
	k := key{r.URL.Query().Get("groupName"), r.PathValue("name")}
	if k.group == "" {
		k.group = "default"
	}
	s.mu.Lock()
	e := s.schedules[k]
	var sc Schedule
	if e != nil {
		sc = e.s
	}
	s.mu.Unlock()
	if e == nil {
		writeError(w, http.StatusNotFound, "ResourceNotFoundException", fmt.Sprintf("schedule %s does not exist in group %s", k.name, k.group))
		return
	}
	sc.ClientToken = ""
	if sc.State == "" {
		sc.State = "ENABLED"
	}
	if sc.ActionAfterCompletion == "" {
		sc.ActionAfterCompletion = "NONE"
	}
	writeJSON(w, sc)
}

func (s *Server) delete(w http.ResponseWriter, r *http.Request) {
	k := key{r.URL.Query().Get("groupName"), r.PathValue("name")}
	if k.group == "" {
		k.group = "default"
	}
	s.mu.Lock()
	e := s.schedules[k]
	if e != nil {
		if e.stop != nil {
			e.stop()
		}
		delete(s.schedules, k)
	}
	s.mu.Unlock()
	if e == nil {
		writeError(w, http.StatusNotFound, "ResourceNotFoundException", fmt.Sprintf("schedule %s does not exist in group %s", k.name, k.group))
		return
	}
	writeJSON(w, struct{}{})
}

// validate checks what the stand-in needs of a new schedule and returns when
// it is due.
func validate(sc *Schedule) (time.Time, error) {
	if !validName(sc.Name) {
		return time.Time{}, fmt.Errorf("name %q must be 1 to 64 characters of [0-9a-zA-Z-_.]", sc.Name)
	}
	if !validName(sc.GroupName) {
		return time.Time{}, fmt.Errorf("group name %q must be 1 to 64 characters of [0-9a-zA-Z-_.]", sc.GroupName)
	}
	loc := time.UTC
	if tz := sc.ScheduleExpressionTimezone; tz != "" && tz != "UTC" {
		l, err := time.LoadLocation(tz)
		if err != nil {
			return time.Time{}, fmt.Errorf("schedule expression timezone %q: %v", tz, err)
		}
		loc = l
	}
	inner, ok := strings.CutPrefix(sc.ScheduleExpression, "at(")
	if inner, ok = strings.CutSuffix(inner, ")"); !ok {
		return time.Time{}, fmt.Errorf("schedule expression %q: the stand-in supports only at(yyyy-mm-ddThh:mm:ss)", sc.ScheduleExpression)
	}
	at, err := time.ParseInLocation("2006-01-02T15:04:05", inner, loc)
	if err != nil {
		return time.Time{}, fmt.Errorf("schedule expression %q: %v", sc.ScheduleExpression, err)
	}
	if sc.FlexibleTimeWindow == nil {
		return time.Time{}, errors.New("FlexibleTimeWindow is required")
	}
	switch sc.FlexibleTimeWindow.Mode {
	case "OFF":
	case "FLEXIBLE":
		if m := sc.FlexibleTimeWindow.MaximumWindowInMinutes; m < 1 || m > 1440 {
			return time.Time{}, fmt.Errorf("FLEXIBLE time window needs MaximumWindowInMinutes in 1..1440, got %d", m)
		}
	default:
		return time.Time{}, fmt.Errorf("FlexibleTimeWindow mode %q", sc.FlexibleTimeWindow.Mode)
	}
	switch sc.ActionAfterCompletion {
	case "", "NONE", "DELETE":
	default:
		return time.Time{}, fmt.Errorf("ActionAfterCompletion %q", sc.ActionAfterCompletion)
	}
	switch sc.State {
	case "", "ENABLED", "DISABLED":
	default:
		return time.Time{}, fmt.Errorf("state %q", sc.State)
	}
	t := sc.Target
	if t == nil {
		return time.Time{}, errors.New("a target is required")
	}
	if !roleARN.MatchString(t.RoleArn) {
		return time.Time{}, fmt.Errorf("target RoleArn %q is not an IAM role ARN", t.RoleArn)
	}
	if _, err := queueName(t.Arn); err != nil {
		return time.Time{}, err
	}
	if strings.HasSuffix(t.Arn, ".fifo") && (t.SqsParameters == nil || t.SqsParameters.MessageGroupId == "") {
		return time.Time{}, errors.New("a FIFO queue target needs SqsParameters.MessageGroupId")
	}
	return at, nil
}

// roleARN is the pattern Scheduler documents for Target.RoleArn.
var roleARN = regexp.MustCompile(`^arn:aws(-[a-z]+)?:iam::\d{12}:role/[\w+=,.@/-]+$`)

// queueName returns the queue name of an SQS queue ARN
// (arn:PARTITION:sqs:REGION:ACCOUNT:NAME).
func queueName(arn string) (string, error) {
	p := strings.Split(arn, ":")
	if len(p) != 6 || p[0] != "arn" || p[2] != "sqs" || p[5] == "" {
		return "", fmt.Errorf("target %q: the stand-in supports only SQS queue targets", arn)
	}
	return p[5], nil
}

func validName(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	return strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.')
	}) < 0
}

// fire sends e's input and, after success, deletes e if asked to.
func (s *Server) fire(k key, e *entry) {
	s.mu.Lock()
	if s.stopped || s.schedules[k] != e {
		s.mu.Unlock()
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()

	backoff := time.Second
	var err error
	for attempt := 1; ; attempt++ {
		if err = s.send(e.s.Target); err == nil {
			break
		}
		if attempt >= s.attempts || !s.sleep(s.scaled(backoff)) {
			s.log.Error("scheduler stand-in: schedule dropped", "thread", k.group, "name", k.name, "attempts", attempt, "err", err)
			s.remove(k, e)
			return
		}
		backoff *= 2
	}
	s.mu.Lock()
	s.fired = append(s.fired, e.s)
	s.mu.Unlock()
	if e.s.ActionAfterCompletion == "DELETE" {
		s.remove(k, e)
	}
}

func (s *Server) remove(k key, e *entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.schedules[k] == e {
		delete(s.schedules, k)
	}
}

func (s *Server) send(t *Target) error {
	if s.sqs == nil {
		return errors.New("the stand-in has no SQS client")
	}
	name, err := queueName(t.Arn)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(s.ctx, 30*time.Second)
	defer cancel()
	u, err := s.sqs.GetQueueUrl(ctx, &awssqs.GetQueueUrlInput{QueueName: aws.String(name)})
	if err != nil {
		return fmt.Errorf("queue url of %s: %w", name, err)
	}
	in := &awssqs.SendMessageInput{QueueUrl: u.QueueUrl, MessageBody: aws.String(t.Input)}
	if t.SqsParameters != nil && t.SqsParameters.MessageGroupId != "" {
		in.MessageGroupId = aws.String(t.SqsParameters.MessageGroupId)
	}
	if _, err := s.sqs.SendMessage(ctx, in); err != nil {
		return fmt.Errorf("send to %s: %w", name, err)
	}
	return nil
}

// sleep waits d on the clock; false if the server stopped first.
func (s *Server) sleep(d time.Duration) bool {
	done := make(chan struct{})
	stop := s.clock.AfterFunc(d, func() { close(done) })
	select {
	case <-done:
		return true
	case <-s.ctx.Done():
		stop()
		return false
	}
}

func (s *Server) scaled(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return time.Duration(float64(d) * s.scale)
}

func epoch(t time.Time) float64 { return float64(t.UnixMilli()) / 1000 }

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v) // the client went away: nothing to do
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Amzn-ErrorType", code)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"Message": msg})
}
