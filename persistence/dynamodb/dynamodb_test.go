package dynamodb_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/clocktest"
	"github.com/infinity-runtime/infinity/internal/emulators/emutest"
	store "github.com/infinity-runtime/infinity/persistence/dynamodb"
	"github.com/infinity-runtime/infinity/persistence/storetest"
)

func TestMain(m *testing.M) { os.Exit(emutest.Main(m)) }

// One table per test process, shared by every case: cases use thread ids
// of their own.
var shared struct {
	mu    sync.Mutex
	table string
	ready bool
}

// client returns a client of the emulator, creating the shared table on
// first use.
func client(t *testing.T) (*ddb.Client, string) {
	t.Helper()
	endpoint := emutest.DynamoDB(t)
	emutest.AWSEnv(t)
	cfg, err := config.LoadDefaultConfig(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	c := ddb.NewFromConfig(cfg, func(o *ddb.Options) {
		o.BaseEndpoint = aws.String(endpoint)
		o.DisableValidateResponseChecksum = true
	})
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if !shared.ready {
		shared.table = fmt.Sprintf("infinity-state-%016x", rand.Uint64())
		if err := store.CreateTable(t.Context(), c, shared.table); err != nil {
			t.Fatal(err)
		}
		shared.ready = true
	}
	return c, shared.table
}

func threadID(name string) infinity.ThreadID {
	return infinity.ThreadID(fmt.Sprintf("%s-%016x", name, rand.Uint64()))
}

func TestStateStore(t *testing.T) {
	c, table := client(t)
	storetest.RunState(t, func(t *testing.T, clock infinity.Clock) infinity.StateStore {
		return store.New(c, table, store.WithClock(clock))
	})
}

func TestStateDeletion(t *testing.T) {
	c, table := client(t)
	storetest.RunStateDeletion(t, func(t *testing.T, clock infinity.Clock) infinity.StateStore {
		return store.New(c, table, store.WithClock(clock))
	})
}

// partition returns the sort keys of every item of the thread.
func partition(t *testing.T, c *ddb.Client, table string, id infinity.ThreadID) []string {
	t.Helper()
	in := &ddb.QueryInput{
		TableName:                 aws.String(table),
		KeyConditionExpression:    aws.String("pk = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: "thread#" + string(id)}},
		ConsistentRead:            aws.Bool(true),
	}
	var sks []string
	for {
		out, err := c.Query(t.Context(), in)
		if err != nil {
			t.Fatal(err)
		}
		for _, item := range out.Items {
			sks = append(sks, item["sk"].(*types.AttributeValueMemberS).Value)
		}
		if len(out.LastEvaluatedKey) == 0 {
			return sks
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

// TestDeleteManyMarks deletes a thread with more marks than one batch takes,
// and a state with subscriptions and choices: nothing of it is left.
func TestDeleteManyMarks(t *testing.T) {
	c, table := client(t)
	sp := newSpy(c)
	s := store.New(sp, table)
	ctx := t.Context()
	id, other := threadID("delmany"), threadID("delother")
	for _, th := range []infinity.ThreadID{id, other} {
		if _, err := s.Save(ctx, th, sample("a", 3, 2), 0); err != nil {
			t.Fatal(err)
		}
		if err := s.MarkProcessed(ctx, th, msgIDs("m", 60), time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(partition(t, c, table, id)); n != 66 {
		t.Fatalf("the thread has %d items before DeleteThreads, want 66", n)
	}
	sp.took()
	// An empty id and a repeated one are ignored.
	if err := s.DeleteThreads(ctx, []infinity.ThreadID{"", id, id}); err != nil {
		t.Fatal(err)
	}
	wantCalls(t, "DeleteThreads of 60 marks", sp.took(), map[string]int{"BatchWriteItem": 3, "GetItem": 1, "Query": 1, "TransactWriteItems": 1})
	if left := partition(t, c, table, id); len(left) != 0 {
		t.Fatalf("DeleteThreads left %d items: %v", len(left), left)
	}
	if n := len(partition(t, c, table, other)); n != 66 {
		t.Fatalf("another thread has %d items after DeleteThreads, want 66", n)
	}
	if _, v, err := s.Load(ctx, other); err != nil || v != 1 {
		t.Fatalf("Load of another thread = version %d, %v", v, err)
	}
	// Deleting it again finds nothing to delete.
	sp.took()
	if err := s.DeleteThreads(ctx, []infinity.ThreadID{id}); err != nil {
		t.Fatal(err)
	}
	wantCalls(t, "DeleteThreads of a deleted thread", sp.took(), map[string]int{"GetItem": 1, "Query": 1})
}

// TestDeleteBatchesAcrossThreads: marks of several threads share batches.
func TestDeleteBatchesAcrossThreads(t *testing.T) {
	c, table := client(t)
	sp := newSpy(c)
	s := store.New(sp, table)
	ctx := t.Context()
	var ids []infinity.ThreadID
	for i := range 4 {
		th := threadID("delacross" + strconv.Itoa(i))
		ids = append(ids, th)
		if err := s.MarkProcessed(ctx, th, msgIDs("m", 10), time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	sp.took()
	if err := s.DeleteThreads(ctx, ids); err != nil {
		t.Fatal(err)
	}
	wantCalls(t, "DeleteThreads of 4 threads of 10 marks", sp.took(), map[string]int{"BatchWriteItem": 2, "GetItem": 4, "Query": 4})
	for _, th := range ids {
		if left := partition(t, c, table, th); len(left) != 0 {
			t.Fatalf("DeleteThreads left %v of %s", left, th)
		}
	}
}

// TestDeleteRacesSave: a Save that lands between DeleteThreads' read of the
// state and its transaction makes it read again and delete the new state,
// whole.
func TestDeleteRacesSave(t *testing.T) {
	c, table := client(t)
	ctx := t.Context()
	id := threadID("delrace")
	plain := store.New(c, table)
	if _, err := plain.Save(ctx, id, sample("a", 2, 2), 0); err != nil {
		t.Fatal(err)
	}
	sp := newSpy(c)
	s := store.New(sp, table, store.WithRetry(3, time.Millisecond))
	var once sync.Once
	sp.beforeTransact = func() error {
		once.Do(func() {
			if _, err := plain.Save(ctx, id, sample("b", 3, 1), 1); err != nil {
				t.Errorf("competing Save: %v", err)
			}
		})
		return nil
	}
	if err := s.DeleteThreads(ctx, []infinity.ThreadID{id}); err != nil {
		t.Fatal(err)
	}
	wantCalls(t, "DeleteThreads that lost a race", sp.took(), map[string]int{"GetItem": 2, "Query": 1, "TransactWriteItems": 2})
	if left := partition(t, c, table, id); len(left) != 0 {
		t.Fatalf("DeleteThreads left %v", left)
	}

	// A thread saved again at every attempt: bounded, then ErrRetryable.
	v, err := plain.Save(ctx, id, sample("c", 1, 1), 0)
	if err != nil {
		t.Fatal(err)
	}
	sp.beforeTransact = func() error {
		var err error
		v, err = plain.Save(ctx, id, sample("c", 1, 1), v)
		return err
	}
	if err := s.DeleteThreads(ctx, []infinity.ThreadID{id}); !errors.Is(err, infinity.ErrRetryable) {
		t.Fatalf("DeleteThreads of a thread always saved in between: %v, want ErrRetryable", err)
	} else if errors.Is(err, infinity.ErrConflict) {
		t.Fatalf("DeleteThreads took no version, yet returned ErrConflict: %v", err)
	}
	if _, gv, err := plain.Load(ctx, id); err != nil || gv != v {
		t.Fatalf("Load after a refused delete = version %d, %v; want %d", gv, err, v)
	}
}

// spy counts calls and lets a test change what the table answers.
type spy struct {
	store.Client

	mu    sync.Mutex
	calls map[string]int

	// beforeTransact runs before each TransactWriteItems; when it returns
	// an error, the call returns it without reaching the table.
	beforeTransact func() error
	// batch, when set, replaces BatchWriteItem.
	batch func(ctx context.Context, in *ddb.BatchWriteItemInput) (*ddb.BatchWriteItemOutput, error)
	// query, when set, edits each Query answer.
	query func(out *ddb.QueryOutput)
	// scanned adds up the items the Queries read.
	scanned int32
}

func newSpy(c store.Client) *spy { return &spy{Client: c, calls: map[string]int{}} }

func (s *spy) count(op string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[op]++
}

// took returns the calls since the last took and resets the count.
func (s *spy) took() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.calls
	s.calls = map[string]int{}
	return c
}

func (s *spy) GetItem(ctx context.Context, in *ddb.GetItemInput, o ...func(*ddb.Options)) (*ddb.GetItemOutput, error) {
	s.count("GetItem")
	return s.Client.GetItem(ctx, in, o...)
}

func (s *spy) Query(ctx context.Context, in *ddb.QueryInput, o ...func(*ddb.Options)) (*ddb.QueryOutput, error) {
	s.count("Query")
	out, err := s.Client.Query(ctx, in, o...)
	if err == nil {
		s.mu.Lock()
		s.scanned += out.ScannedCount
		s.mu.Unlock()
		if s.query != nil {
			s.query(out)
		}
	}
	return out, err
}

func (s *spy) TransactWriteItems(ctx context.Context, in *ddb.TransactWriteItemsInput, o ...func(*ddb.Options)) (*ddb.TransactWriteItemsOutput, error) {
	s.count("TransactWriteItems")
	if s.beforeTransact != nil {
		if err := s.beforeTransact(); err != nil {
			return nil, err
		}
	}
	return s.Client.TransactWriteItems(ctx, in, o...)
}

func (s *spy) BatchWriteItem(ctx context.Context, in *ddb.BatchWriteItemInput, o ...func(*ddb.Options)) (*ddb.BatchWriteItemOutput, error) {
	s.count("BatchWriteItem")
	if s.batch != nil {
		return s.batch(ctx, in)
	}
	return s.Client.BatchWriteItem(ctx, in, o...)
}

func sample(tag string, subs, choices int) infinity.State {
	st := infinity.State{Metadata: json.RawMessage(fmt.Sprintf(`{"user":%q}`, tag))}
	for i := range subs {
		st.Subscriptions = append(st.Subscriptions, fmt.Sprintf("call-%s-%d", tag, i))
	}
	for i := range choices {
		st.Choices = append(st.Choices, infinity.PendingChoice{
			ID: fmt.Sprintf("choice-%s-%d", tag, i), Prompt: "pick", Choices: []string{"a", "b"}, ResponseURL: "https://example.com/" + tag,
		})
	}
	return st
}

func wantCalls(t *testing.T, what string, got, want map[string]int) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s made calls %v, want %v", what, got, want)
	}
}

func TestCallCounts(t *testing.T) {
	c, table := client(t)
	sp := newSpy(c)
	s := store.New(sp, table)
	ctx := t.Context()
	id := threadID("calls")

	v, err := s.Save(ctx, id, sample("a", 2, 2), 0)
	if err != nil {
		t.Fatal(err)
	}
	wantCalls(t, "Save", sp.took(), map[string]int{"GetItem": 1, "TransactWriteItems": 1})
	if _, err := s.Save(ctx, id, sample("a", 2, 2), v+1); !errors.Is(err, infinity.ErrConflict) {
		t.Fatalf("Save at a wrong version: %v, want ErrConflict", err)
	}
	wantCalls(t, "Save at a stale version", sp.took(), map[string]int{"GetItem": 1})
	if _, _, err := s.Load(ctx, id); err != nil {
		t.Fatal(err)
	}
	wantCalls(t, "Load", sp.took(), map[string]int{"Query": 1})
	if err := s.MarkProcessed(ctx, id, msgIDs("m", 30), time.Hour); err != nil {
		t.Fatal(err)
	}
	wantCalls(t, "MarkProcessed of 30 ids", sp.took(), map[string]int{"BatchWriteItem": 2})
	if ok, err := s.Processed(ctx, id, "m7"); err != nil || !ok {
		t.Fatalf("Processed = %v, %v; want true", ok, err)
	}
	wantCalls(t, "Processed", sp.took(), map[string]int{"GetItem": 1})
}

func msgIDs(prefix string, n int) []infinity.MessageID {
	out := make([]infinity.MessageID, n)
	for i := range out {
		out[i] = infinity.MessageID(prefix + strconv.Itoa(i))
	}
	return out
}

// rawState returns the stored state item.
func rawState(t *testing.T, c *ddb.Client, table string, id infinity.ThreadID) map[string]types.AttributeValue {
	t.Helper()
	out, err := c.GetItem(t.Context(), &ddb.GetItemInput{
		TableName:      aws.String(table),
		Key:            rawKey(id, "state"),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		t.Fatal(err)
	}
	return out.Item
}

func rawKey(id infinity.ThreadID, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: "thread#" + string(id)},
		"sk": &types.AttributeValueMemberS{Value: sk},
	}
}

func TestManyMarksKeepStateSmall(t *testing.T) {
	c, table := client(t)
	sp := newSpy(c)
	s := store.New(sp, table)
	ctx := t.Context()
	id := threadID("many")
	st := sample("a", 2, 2)
	if _, err := s.Save(ctx, id, st, 0); err != nil {
		t.Fatal(err)
	}
	before := rawState(t, c, table, id)
	sp.took()
	const n = 3000
	ids := msgIDs("msg-", n)
	for i := 0; i < n; i += 500 {
		if err := s.MarkProcessed(ctx, id, ids[i:i+500], time.Hour); err != nil {
			t.Fatalf("MarkProcessed from %d: %v", i, err)
		}
	}
	wantCalls(t, "3000 marks", sp.took(), map[string]int{"BatchWriteItem": n / 25})
	after := rawState(t, c, table, id)
	if !reflect.DeepEqual(after, before) {
		t.Errorf("state item changed by marks: %d bytes before, %d after", store.ItemSize(before), store.ItemSize(after))
	}
	t.Logf("state item: %d bytes after %d marks", store.ItemSize(after), n)
	for _, i := range []int{0, 1234, n - 1} {
		if ok, err := s.Processed(ctx, id, ids[i]); err != nil || !ok {
			t.Errorf("Processed(%s) = %v, %v; want true", ids[i], ok, err)
		}
	}
	// Load reads the five state items, not the 3000 marks.
	sp.scanned = 0
	got, _, err := s.Load(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if sp.scanned != 5 {
		t.Errorf("Load scanned %d items, want 5 (state, 2 subscriptions, 2 choices)", sp.scanned)
	}
	if len(got.Subscriptions) != 2 || len(got.Choices) != 2 {
		t.Errorf("Load = %+v", got)
	}
}

func TestInvalid(t *testing.T) {
	c, table := client(t)
	s := store.New(c, table)
	ctx := t.Context()
	id := threadID("invalid")
	big := strings.Repeat("x", store.MaxItemSize)
	tooMany := sample("a", 30, 20)
	dupSub := sample("a", 1, 0)
	dupSub.Subscriptions = append(dupSub.Subscriptions, dupSub.Subscriptions[0])
	dupChoice := sample("a", 0, 1)
	dupChoice.Choices = append(dupChoice.Choices, dupChoice.Choices[0])
	bigChoice := sample("a", 0, 1)
	bigChoice.Choices[0].Prompt = big
	for _, tc := range []struct {
		name string
		err  error
		want []string // parts of the message
	}{
		{"too many entries", save(s, id, tooMany), []string{"30 subscriptions and 20 choices", "at most 49"}},
		{"big metadata", save(s, id, infinity.State{Metadata: json.RawMessage(`"` + big + `"`)}), []string{"state item of 409", "limit is 409600"}},
		{"big choice", save(s, id, bigChoice), []string{"item of 409", "limit is 409600"}},
		{"duplicate subscription", save(s, id, dupSub), []string{"listed twice"}},
		{"duplicate choice", save(s, id, dupChoice), []string{"listed twice"}},
		{"empty subscription", save(s, id, infinity.State{Subscriptions: []string{""}}), []string{"empty subscription id"}},
		{"empty choice id", save(s, id, infinity.State{Choices: []infinity.PendingChoice{{}}}), []string{"empty choice id"}},
		{"long subscription id", save(s, id, infinity.State{Subscriptions: []string{strings.Repeat("s", 1100)}}), []string{"1100 bytes"}},
		{"metadata not JSON", save(s, id, infinity.State{Metadata: json.RawMessage("{")}), []string{"not valid JSON"}},
		{"save empty thread", save(s, "", infinity.State{}), []string{"empty thread id"}},
		{"load empty thread", func() error { _, _, err := s.Load(ctx, ""); return err }(), []string{"empty thread id"}},
		{"processed empty thread", func() error { _, err := s.Processed(ctx, "", "m"); return err }(), []string{"empty thread id"}},
		{"processed empty message", func() error { _, err := s.Processed(ctx, id, ""); return err }(), []string{"empty message id"}},
		{"mark empty thread", s.MarkProcessed(ctx, "", []infinity.MessageID{"m"}, time.Hour), []string{"empty thread id"}},
		{"mark empty message", s.MarkProcessed(ctx, id, []infinity.MessageID{"m", ""}, time.Hour), []string{"empty message id"}},
		{"mark zero ttl", s.MarkProcessed(ctx, id, []infinity.MessageID{"m"}, 0), []string{"ttl 0s"}},
		{"mark negative ttl", s.MarkProcessed(ctx, id, nil, -time.Second), []string{"ttl -1s"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !errors.Is(tc.err, infinity.ErrInvalid) {
				t.Fatalf("error %v, want ErrInvalid", tc.err)
			}
			for _, w := range tc.want {
				if !strings.Contains(tc.err.Error(), w) {
					t.Errorf("error %q does not say %q", tc.err, w)
				}
			}
		})
	}
	if _, _, err := s.Load(ctx, id); !errors.Is(err, infinity.ErrNotFound) {
		t.Errorf("Load after refused saves: %v, want ErrNotFound", err)
	}
}

func save(s *store.StateStore, id infinity.ThreadID, st infinity.State) error {
	_, err := s.Save(context.Background(), id, st, 0)
	return err
}

// TestAtLimits saves states at the entry limit, replacing every entry at
// once (the largest transaction), and metadata near the size limit.
func TestAtLimits(t *testing.T) {
	c, table := client(t)
	s := store.New(c, table)
	ctx := t.Context()
	id := threadID("limits")
	a, b := sample("a", 25, 24), sample("b", 24, 25)
	a.Metadata = json.RawMessage(`"` + strings.Repeat("m", 300_000) + `"`)
	b.Choices[3].Prompt = strings.Repeat("p", 300_000)
	v := infinity.Version(0)
	for i, st := range []infinity.State{a, b, a, {}} {
		var err error
		if v, err = s.Save(ctx, id, st, v); err != nil {
			t.Fatalf("save %d: %v", i, err)
		}
		got, gv, err := s.Load(ctx, id)
		if err != nil {
			t.Fatalf("load %d: %v", i, err)
		}
		gj, _ := json.Marshal(got)
		wj, _ := json.Marshal(st)
		if gv != v || string(gj) != string(wj) {
			t.Fatalf("load %d: version %d (want %d), state differs: got %.200s, want %.200s", i, gv, v, gj, wj)
		}
	}
}

// TestSizeBoundary finds the largest metadata the store accepts and checks
// that DynamoDB takes it: the store's size estimate is not below
// DynamoDB's.
func TestSizeBoundary(t *testing.T) {
	c, table := client(t)
	s := store.New(c, table)
	meta := func(n int) json.RawMessage { return json.RawMessage(`"` + strings.Repeat("m", n-2) + `"`) }
	lo, hi := 300_000, store.MaxItemSize // lo is accepted, hi is not
	for hi-lo > 1 {
		mid := (lo + hi) / 2
		err := save(s, threadID("probe"), infinity.State{Metadata: meta(mid), Subscriptions: []string{"s"}})
		switch {
		case err == nil:
			lo = mid
		case errors.Is(err, infinity.ErrInvalid):
			hi = mid
		default:
			t.Fatalf("Save of %d bytes of metadata: %v (DynamoDB refused what the store let through)", mid, err)
		}
	}
	if err := save(s, threadID("edge"), infinity.State{Metadata: meta(lo), Subscriptions: []string{"s"}}); err != nil {
		t.Fatalf("Save of %d bytes: %v", lo, err)
	}
	t.Logf("largest metadata accepted: %d bytes (limit %d)", lo, store.MaxItemSize)
}

func TestTTL(t *testing.T) {
	c, table := client(t)
	ctx := t.Context()
	if err := store.CreateTable(ctx, c, table); err != nil {
		t.Fatalf("CreateTable of an existing table: %v", err)
	}
	d, err := c.DescribeTimeToLive(ctx, &ddb.DescribeTimeToLiveInput{TableName: aws.String(table)})
	if err != nil {
		t.Fatal(err)
	}
	if ttl := d.TimeToLiveDescription; ttl == nil || ttl.TimeToLiveStatus != types.TimeToLiveStatusEnabled || aws.ToString(ttl.AttributeName) != "ttl" {
		t.Fatalf("TTL description %+v, want enabled on ttl", ttl)
	}
	now := time.Unix(1_800_000_000, 123_456_789)
	s := store.New(c, table, store.WithClock(clocktest.New(now)))
	id := threadID("ttl")
	if err := s.MarkProcessed(ctx, id, []infinity.MessageID{"m"}, 90*time.Second); err != nil {
		t.Fatal(err)
	}
	out, err := c.GetItem(ctx, &ddb.GetItemInput{TableName: aws.String(table), Key: rawKey(id, "done#m"), ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	num := func(name string) string {
		n, ok := out.Item[name].(*types.AttributeValueMemberN)
		if !ok {
			t.Fatalf("%s is %T, want a number", name, out.Item[name])
		}
		return n.Value
	}
	if got, want := num("exp"), "1800000090124"; got != want {
		t.Errorf("exp = %s, want %s (ms, rounded up)", got, want)
	}
	if got, want := num("ttl"), "1800000091"; got != want {
		t.Errorf("ttl = %s, want %s (s, rounded up)", got, want)
	}

	// Under a clock behind real time, DynamoDB's TTL (on real time) must
	// not delete marks that are in force on the store's clock.
	past := store.New(c, table, store.WithClock(clocktest.New(time.Unix(1_500_000_000, 0))))
	realNow := time.Now()
	if err := past.MarkProcessed(ctx, id, []infinity.MessageID{"m"}, time.Hour); err != nil {
		t.Fatal(err)
	}
	if out, err = c.GetItem(ctx, &ddb.GetItemInput{TableName: aws.String(table), Key: rawKey(id, "done#m"), ConsistentRead: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	got, err := strconv.ParseInt(num("ttl"), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	if want := realNow.Add(time.Hour).Unix(); got < want {
		t.Errorf("ttl under a clock in the past = %d, want at least real now + 1h = %d", got, want)
	}
}

// TestConflict covers both ways a stale Save is caught: by the read before
// the transaction, and by the transaction's condition when another Save
// lands in between.
func TestConflict(t *testing.T) {
	c, table := client(t)
	ctx := t.Context()
	id := threadID("conflict")
	a, b := store.New(c, table), store.New(c, table)
	v, err := a.Save(ctx, id, sample("a", 1, 1), 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Save(ctx, id, sample("b", 1, 1), v); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Save(ctx, id, sample("a2", 1, 1), v); !errors.Is(err, infinity.ErrConflict) {
		t.Fatalf("Save after a concurrent Save: %v, want ErrConflict", err)
	}

	sp := newSpy(c)
	racer := store.New(sp, table)
	var once sync.Once
	sp.beforeTransact = func() error {
		once.Do(func() {
			if _, err := b.Save(ctx, id, sample("c", 2, 0), v+1); err != nil {
				t.Errorf("competing Save: %v", err)
			}
		})
		return nil
	}
	if _, err := racer.Save(ctx, id, sample("d", 0, 2), v+1); !errors.Is(err, infinity.ErrConflict) {
		t.Fatalf("Save that lost the race in its transaction: %v, want ErrConflict", err)
	}
	got, gv, err := a.Load(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if gv != v+2 || len(got.Subscriptions) != 2 || len(got.Choices) != 0 {
		t.Errorf("Load = %+v at %d, want the competing Save's state at %d", got, gv, v+2)
	}
}

// TestTransactionConflictRetried: a transaction cancelled because another
// one held an item is tried again; one that keeps being cancelled ends in
// ErrRetryable.
func TestTransactionConflictRetried(t *testing.T) {
	c, table := client(t)
	ctx := t.Context()
	sp := newSpy(c)
	s := store.New(sp, table, store.WithRetry(3, time.Millisecond))
	id := threadID("txconflict")
	conflicts := 1
	sp.beforeTransact = func() error {
		if conflicts == 0 {
			return nil
		}
		conflicts--
		return &types.TransactionCanceledException{
			Message: aws.String("Transaction cancelled"),
			CancellationReasons: []types.CancellationReason{
				{Code: aws.String("None")}, {Code: aws.String("TransactionConflict")},
			},
		}
	}
	if _, err := s.Save(ctx, id, sample("a", 1, 0), 0); err != nil {
		t.Fatalf("Save after one transaction conflict: %v", err)
	}
	wantCalls(t, "Save after one conflict", sp.took(), map[string]int{"GetItem": 1, "TransactWriteItems": 2})
	conflicts = 100
	if _, err := s.Save(ctx, id, sample("b", 1, 0), 1); !errors.Is(err, infinity.ErrRetryable) {
		t.Fatalf("Save that always meets a conflict: %v, want ErrRetryable", err)
	}
	wantCalls(t, "Save that always meets a conflict", sp.took(), map[string]int{"GetItem": 1, "TransactWriteItems": 3})
}

// TestUnprocessedRetried makes DynamoDB leave half of each batch
// unprocessed: the store sends it again.
func TestUnprocessedRetried(t *testing.T) {
	c, table := client(t)
	ctx := t.Context()
	sp := newSpy(c)
	var mu sync.Mutex
	left := 2 // batches to cut short
	sp.batch = func(ctx context.Context, in *ddb.BatchWriteItemInput) (*ddb.BatchWriteItemOutput, error) {
		mu.Lock()
		cut := left > 0 && len(in.RequestItems[table]) > 1
		if cut {
			left--
		}
		mu.Unlock()
		if !cut {
			return c.BatchWriteItem(ctx, in)
		}
		reqs := in.RequestItems[table]
		half := len(reqs) / 2
		if _, err := c.BatchWriteItem(ctx, &ddb.BatchWriteItemInput{RequestItems: map[string][]types.WriteRequest{table: reqs[:half]}}); err != nil {
			return nil, err
		}
		return &ddb.BatchWriteItemOutput{UnprocessedItems: map[string][]types.WriteRequest{table: reqs[half:]}}, nil
	}
	s := store.New(sp, table, store.WithRetry(4, time.Millisecond))
	id := threadID("unprocessed")
	// Repeated ids are written once: a batch may not name a key twice.
	ids := append(msgIDs("m", 20), msgIDs("m", 20)...)
	if err := s.MarkProcessed(ctx, id, ids, time.Hour); err != nil {
		t.Fatal(err)
	}
	wantCalls(t, "MarkProcessed with unprocessed items", sp.took(), map[string]int{"BatchWriteItem": 3})
	for _, m := range msgIDs("m", 20) {
		if ok, err := s.Processed(ctx, id, m); err != nil || !ok {
			t.Errorf("Processed(%s) = %v, %v; want true", m, ok, err)
		}
	}

	sp.took()
	// A table that never takes anything: bounded, then ErrRetryable.
	sp.batch = func(ctx context.Context, in *ddb.BatchWriteItemInput) (*ddb.BatchWriteItemOutput, error) {
		return &ddb.BatchWriteItemOutput{UnprocessedItems: in.RequestItems}, nil
	}
	err := s.MarkProcessed(ctx, id, []infinity.MessageID{"x"}, time.Hour)
	if !errors.Is(err, infinity.ErrRetryable) {
		t.Fatalf("MarkProcessed against a stuck table: %v, want ErrRetryable", err)
	}
	wantCalls(t, "MarkProcessed against a stuck table", sp.took(), map[string]int{"BatchWriteItem": 4})
}

// TestTornLoadRetried makes a Query miss a choice item, as one overlapping
// a Save's transaction may: Load reads again.
func TestTornLoadRetried(t *testing.T) {
	c, table := client(t)
	ctx := t.Context()
	sp := newSpy(c)
	s := store.New(sp, table, store.WithRetry(3, time.Millisecond))
	id := threadID("torn")
	want := sample("a", 1, 2)
	if _, err := s.Save(ctx, id, want, 0); err != nil {
		t.Fatal(err)
	}
	tears := 1
	sp.query = func(out *ddb.QueryOutput) {
		if tears == 0 {
			return
		}
		tears--
		var kept []map[string]types.AttributeValue
		for _, item := range out.Items {
			if sk := item["sk"].(*types.AttributeValueMemberS).Value; !strings.HasPrefix(sk, "state#choice#") {
				kept = append(kept, item)
			}
		}
		out.Items = kept
	}
	sp.took()
	got, _, err := s.Load(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Choices) != 2 {
		t.Errorf("Load = %+v", got)
	}
	wantCalls(t, "Load after a torn read", sp.took(), map[string]int{"Query": 2})

	tears = 100
	if _, _, err := s.Load(ctx, id); !errors.Is(err, infinity.ErrRetryable) {
		t.Fatalf("Load that always tears: %v, want ErrRetryable", err)
	}
}
