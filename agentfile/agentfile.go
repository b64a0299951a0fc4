package agentfile

import (
	"cmp"
	_ "embed"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/internal/yamlnode"
	"github.com/infinity-runtime/infinity/pricing"
)

//go:embed schema.json
var schema []byte

// Schema returns the JSON Schema (draft 2020-12) of agent files.
func Schema() []byte { return append([]byte(nil), schema...) }

// ProviderNames are the values of model.provider.
var ProviderNames = []string{"scripted", "anthropic", "openai", "bedrock"}

// Defaults applied when a field is absent.
const (
	DefaultMaxDepth      = 8
	DefaultMaxChildren   = 32
	DefaultContextWindow = 200000
	DefaultMaxOutput     = 8192
)

// MaxSize is the largest agent file Parse accepts.
const MaxSize = 1 << 20

// File is a parsed and validated agent file.
type File struct {
	Name        string    `yaml:"name"`
	Description string    `yaml:"description"`
	Model       ModelSpec `yaml:"model"`
	// Models are the other models threads of this agent may run on
	// (infinity run --model, spawn_thread's model), besides Model.
	Models []ModelSpec `yaml:"models"`
	System string      `yaml:"system"`
	Tools  Tools       `yaml:"tools"`
	Limits Limits      `yaml:"limits"`
	// Budget caps what each tree of the agent may spend (a start request
	// may give its own instead).
	Budget BudgetSpec `yaml:"budget"`

	// path is the agent file's path as given to Parse.
	path string
}

// ModelSpec is the model section, or one entry of models; File.Registry
// builds the providers.
type ModelSpec struct {
	// Provider is one of ProviderNames.
	Provider string `yaml:"provider"`
	// ID is the model id; required except for the default scripted model
	// (its script names it).
	ID string `yaml:"id"`
	// Script is the scripted model's script, relative to the agent file
	// (model only: scripted entries of models share it).
	Script string `yaml:"script"`
	// Demo selects the built-in demo script (model only, scripted).
	Demo bool `yaml:"demo"`
	// ContextWindow and MaxOutput override the model's limits (0: default).
	ContextWindow int `yaml:"context_window"`
	MaxOutput     int `yaml:"max_output"`
	// Images says the model takes image input (default false: images in
	// tool results reach it as text placeholders).
	Images bool `yaml:"images"`
	// Price, when set, is the model's price in USD per million tokens; it
	// overrides the daemon's prices file.
	Price *pricing.Price `yaml:"price"`
	// RateLimit, when set, bounds the calls to this model across every
	// thread of the runtime (actors.ModelLimit): calls in flight, requests
	// and tokens per minute.
	RateLimit *RateLimit `yaml:"rate_limit"`
}

// RateLimit is a model's rate_limit.
type RateLimit struct {
	Concurrent int `yaml:"concurrent"`
	RPM        int `yaml:"rpm"`
	TPM        int `yaml:"tpm"`
}

// BudgetSpec is the budget block: the caps of infinity.Budget (zero or
// absent: no cap). Wall is a Go duration.
type BudgetSpec struct {
	USD        float64 `yaml:"usd"`
	Tokens     int64   `yaml:"tokens"`
	ModelCalls int64   `yaml:"model_calls"`
	Wall       string  `yaml:"wall"`
	MaxThreads int     `yaml:"max_threads"`
}

// TreeBudget is the file's budget, nil without one.
func (f *File) TreeBudget() *infinity.Budget {
	s := f.Budget
	b := infinity.Budget{USD: s.USD, Tokens: s.Tokens, ModelCalls: s.ModelCalls, Wall: duration(s.Wall), MaxThreads: s.MaxThreads} // checked at parse
	if b.IsZero() {
		return nil
	}
	return &b
}

// Limits bound a thread tree; zero values mean the engine's defaults.
type Limits struct {
	MaxDepth    int   `yaml:"max_depth"`
	MaxChildren int   `yaml:"max_children"`
	MaxTokens   int   `yaml:"max_tokens"`
	Slice       Slice `yaml:"slice"`
}

// Slice bounds one slice.
type Slice struct {
	Completions int `yaml:"completions"`
	// Wall is a Go duration ("5m"); WallDuration parses it.
	Wall string `yaml:"wall"`
}

// WallDuration returns Wall parsed, or 0 when it is empty or invalid
// (Parse has rejected invalid values).
func (s Slice) WallDuration() time.Duration {
	d, err := time.ParseDuration(strings.TrimSpace(s.Wall))
	if err != nil {
		return 0
	}
	return d
}

// Path returns the path the file was parsed from.
func (f *File) Path() string { return f.path }

// ScriptPath returns model.script resolved against the agent file's
// directory ("" when there is none).
func (f *File) ScriptPath() string {
	if f.Model.Script == "" {
		return ""
	}
	return resolve(f.path, f.Model.Script)
}

func resolve(agentPath, script string) string {
	if filepath.IsAbs(script) {
		return filepath.Clean(script)
	}
	return filepath.Join(filepath.Dir(agentPath), script)
}

// Load reads and parses the agent file at path.
func Load(path string) (*File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("agentfile: %w", err)
	}
	return Parse(path, b)
}

// Parse decodes and validates an agent file; path names it in errors and
// anchors the relative script path. Every error wraps infinity.ErrInvalid
// and reads "path:line:col: field.path: what is wrong"; semantic errors are
// all reported, joined with errors.Join.
func Parse(path string, data []byte) (*File, error) { return parseFile(path, data, false) }

// ParseDetached is Parse for a file whose script does not sit next to it
// (the daemon receives the script's content with the file): everything is
// checked except that model.script exists.
func ParseDetached(path string, data []byte) (*File, error) { return parseFile(path, data, true) }

func parseFile(path string, data []byte, detached bool) (f *File, err error) {
	defer func() {
		if r := recover(); r != nil {
			f, err = nil, fmt.Errorf("%s: internal error parsing YAML: %v: %w", path, r, infinity.ErrInvalid)
		}
	}()
	if len(data) > MaxSize {
		return nil, fmt.Errorf("%s: the file is %d bytes; at most %d are allowed: %w", path, len(data), MaxSize, infinity.ErrInvalid)
	}
	p := &parse{path: path, detached: detached}
	astFile, err := parser.ParseBytes(data, 0)
	if err != nil {
		return nil, p.yamlError(err)
	}
	var body ast.Node
	docs := 0
	for _, d := range astFile.Docs {
		if d == nil || d.Body == nil {
			continue
		}
		docs++
		if docs == 1 {
			body = d.Body
			continue
		}
		return nil, p.errAt(d.Body.GetToken(), "", "only one YAML document is allowed")
	}
	p.index = map[string]*entry{}
	if body != nil {
		p.walk(body, "", nil, kMap)
	}
	if len(p.errs) > 0 {
		return nil, p.joined()
	}
	f = &File{path: path}
	if body != nil {
		if _, isNull := body.(*ast.NullNode); !isNull {
			if err := yaml.NodeToValue(body, f, yaml.Strict()); err != nil {
				return nil, p.yamlError(err)
			}
		}
	}
	f.path = path
	p.root = body
	if err := p.validate(f); err != nil {
		return nil, err
	}
	return f, nil
}

// entry is what the AST walk knows about one field path.
type entry struct {
	key   *token.Token // the key's token (nil for sequence items and the root)
	value ast.Node
}

// pos is where a problem with the entry is reported: a scalar's value, a
// mapping's key (or, for the root, its first key).
func (e *entry) pos() *token.Token {
	switch v := e.value.(type) {
	case *ast.MappingNode:
		if e.key != nil {
			return e.key
		}
		if len(v.Values) > 0 && v.Values[0].Key != nil {
			return v.Values[0].Key.GetToken()
		}
	case *ast.MappingValueNode:
		if e.key != nil {
			return e.key
		}
		if v.Key != nil {
			return v.Key.GetToken()
		}
	}
	if e.value != nil && e.value.GetToken() != nil {
		return e.value.GetToken()
	}
	return e.key
}

type parse struct {
	path     string
	detached bool // do not look for model.script on disk
	root     ast.Node
	index    map[string]*entry
	// byPos maps a token position to a field path (for decoder errors).
	byPos map[[2]int]string
	errs  []error
}

func posKey(tk *token.Token) [2]int {
	if tk == nil || tk.Position == nil {
		return [2]int{}
	}
	return [2]int{tk.Position.Line, tk.Position.Column}
}

func join(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

func (p *parse) remember(tk *token.Token, path string) {
	if p.byPos == nil {
		p.byPos = map[[2]int]string{}
	}
	k := posKey(tk)
	if k == ([2]int{}) {
		return
	}
	if _, ok := p.byPos[k]; !ok {
		p.byPos[k] = path
	}
}

type kind int

const (
	kMap kind = iota + 1
	kStr
	kInt
	kBool
	kList     // of strings
	kNum      // an integer or a decimal number
	kMapList  // a list of mappings
	kStrOrMap // a string or a mapping
	kEntries  // a list of strings and mappings
	kNames    // a mapping whose keys are names (headers, variables): see names
)

func (k kind) String() string {
	switch k {
	case kMap:
		return "a mapping"
	case kStr:
		return "a string"
	case kInt:
		return "an integer"
	case kBool:
		return "a boolean (true or false)"
	case kList:
		return "a list of strings"
	case kNum:
		return "a number"
	case kMapList:
		return "a list of mappings"
	case kStrOrMap:
		return "a string or a mapping"
	case kEntries:
		return "a list of URLs and mappings"
	case kNames:
		return "a mapping"
	}
	return "a value"
}

// fields are the fields of each mapping and the kinds of their values.
// A list's items share one entry, written "models[]".
var fields = map[string]map[string]kind{
	"":                      {"name": kStr, "description": kStr, "model": kMap, "models": kMapList, "system": kStr, "tools": kMap, "limits": kMap, "budget": kMap},
	"budget":                {"usd": kNum, "tokens": kInt, "model_calls": kInt, "wall": kStr, "max_threads": kInt},
	"model":                 {"provider": kStr, "id": kStr, "script": kStr, "demo": kBool, "context_window": kInt, "max_output": kInt, "images": kBool, "price": kMap, "rate_limit": kMap},
	"model.price":           {"input": kNum, "output": kNum},
	"model.rate_limit":      {"concurrent": kInt, "rpm": kInt, "tpm": kInt},
	"models[]":              {"provider": kStr, "id": kStr, "context_window": kInt, "max_output": kInt, "images": kBool, "price": kMap, "rate_limit": kMap},
	"models[].price":        {"input": kNum, "output": kNum},
	"models[].rate_limit":   {"concurrent": kInt, "rpm": kInt, "tpm": kInt},
	"tools":                 {"rap": kEntries, "mcp": kEntries},
	"tools.rap[]":           {"url": kStr, "name": kStr, "timeout": kMap, "command": kStr, "args": kList, "env": kNames, "port": kInt, "idle": kStr},
	"tools.rap[].timeout":   {"connect": kStr, "call": kStr},
	"tools.rap[].env.*":     {"env": kStr, "file": kStr, "prefix": kStr},
	"tools.mcp[]":           {"url": kStr, "name": kStr, "headers": kNames, "timeout": kMap, "command": kStr, "args": kList, "env": kNames, "idle": kStr, "oauth": kMap},
	"tools.mcp[].timeout":   {"connect": kStr, "call": kStr},
	"tools.mcp[].headers.*": {"env": kStr, "file": kStr, "prefix": kStr},
	"tools.mcp[].env.*":     {"env": kStr, "file": kStr, "prefix": kStr},
	"limits":                {"max_depth": kInt, "max_children": kInt, "max_tokens": kInt, "slice": kMap},
	"limits.slice":          {"completions": kInt, "wall": kStr},

	"tools.mcp[].oauth":               {"client_id": kStr, "client_secret": kStrOrMap, "scopes": kList},
	"tools.mcp[].oauth.client_secret": {"env": kStr, "file": kStr, "prefix": kStr},
}

// walk indexes the AST by field path and checks field names and value
// kinds, collecting every problem.
func (p *parse) walk(n ast.Node, path string, key *token.Token, want kind) {
	n = yamlnode.Unwrap(n)
	if n == nil {
		return
	}
	p.remember(n.GetToken(), path)
	switch n.(type) {
	case *ast.NullNode:
		return // an empty value is an absent one
	case *ast.AliasNode:
		p.errs = append(p.errs, p.errAt(n.GetToken(), path, "aliases are not supported in agent files"))
		return
	}
	if _, ok := p.index[path]; !ok {
		p.index[path] = &entry{key: key, value: n}
	}
	ok := false
	switch want {
	case kMap:
		ok = p.walkMapping(n, path, p.fieldKind)
	case kList, kMapList, kEntries:
		if seq, isSeq := n.(*ast.SequenceNode); isSeq {
			ok = true
			item := map[kind]kind{kList: kStr, kMapList: kMap, kEntries: kStrOrMap}[want]
			for i, v := range seq.Values {
				p.walk(v, path+"["+strconv.Itoa(i)+"]", nil, item)
			}
		}
	case kStrOrMap:
		switch n.(type) {
		case *ast.StringNode, *ast.LiteralNode:
			ok = true
		default:
			ok = p.walkMapping(n, path, p.fieldKind)
		}
	case kNames:
		ok = p.walkMapping(n, path, p.nameKind)
	case kStr:
		switch n.(type) {
		case *ast.StringNode, *ast.LiteralNode:
			ok = true
		}
	case kInt:
		_, ok = n.(*ast.IntegerNode)
	case kNum:
		switch n.(type) {
		case *ast.IntegerNode, *ast.FloatNode:
			ok = true
		}
	case kBool:
		_, ok = n.(*ast.BoolNode)
	}
	if !ok {
		p.errs = append(p.errs, p.errAt(n.GetToken(), path, fmt.Sprintf("want %s, got %s", want, describeNode(n))))
	}
}

// walkMapping walks the entries of n when it is a mapping (reporting
// whether it is one); keyKind checks each key and gives its value's kind.
func (p *parse) walkMapping(n ast.Node, path string, keyKind func(parent, name string) (kind, string, bool)) bool {
	switch n := n.(type) {
	case *ast.MappingNode:
		for _, mv := range n.Values {
			p.walkPair(mv, path, keyKind)
		}
		return true
	case *ast.MappingValueNode:
		p.walkPair(n, path, keyKind)
		return true
	}
	return false
}

// walkPair walks one entry of a mapping.
func (p *parse) walkPair(mv *ast.MappingValueNode, parent string, keyKind func(parent, name string) (kind, string, bool)) {
	if mv == nil || mv.Key == nil {
		return
	}
	ktk := mv.Key.GetToken()
	if _, merge := mv.Key.(*ast.MergeKeyNode); merge {
		p.errs = append(p.errs, p.errAt(ktk, parent, "merge keys (<<) are not supported in agent files"))
		return
	}
	name := yamlnode.KeyName(mv.Key)
	child := join(parent, name)
	p.remember(ktk, child)
	p.remember(mv.Start, child)
	want, msg, ok := keyKind(parent, name)
	if !ok {
		p.errs = append(p.errs, p.errAt(ktk, child, msg))
		return
	}
	p.walk(mv.Value, child, ktk, want)
}

// fieldKind is the kind of a known field's value.
func (p *parse) fieldKind(parent, name string) (kind, string, bool) {
	want, ok := fields[generic(parent)][name]
	if !ok {
		return 0, unknownField(name, parent), false
	}
	return want, "", true
}

// names are the mappings whose keys are names, and the kinds of their
// values.
var names = map[string]kind{"tools.mcp[].headers": kStrOrMap, "tools.mcp[].env": kStrOrMap, "tools.rap[].env": kStrOrMap}

// nameKind checks a key of a mapping whose keys are names (freeKey).
func (p *parse) nameKind(parent, name string) (kind, string, bool) {
	if msg, ok := p.freeKey(parent, name); !ok {
		return 0, msg, false
	}
	return names[generic(parent)], "", true
}

func unknownField(name, parent string) string {
	msg := fmt.Sprintf("unknown field %q", name)
	names := known[generic(parent)]
	if s := suggest(name, names); s != "" {
		return msg + fmt.Sprintf(" (did you mean %q?)", s)
	}
	return msg + " (known fields: " + strings.Join(names, ", ") + ")"
}

var indexRE = regexp.MustCompile(`\[[0-9]+\]`)

// generic turns a field path's list indexes into [] ("models[2].price" →
// "models[].price") and the keys of names into * ("tools.mcp[0].env.FOO"
// → "tools.mcp[].env.*"), the key of fields and known.
func generic(path string) string {
	g := indexRE.ReplaceAllString(path, "[]")
	for prefix := range names {
		if rest, ok := strings.CutPrefix(g, prefix+"."); ok {
			_, tail, more := strings.Cut(rest, ".")
			g = prefix + ".*"
			if more {
				g += "." + tail
			}
			break
		}
	}
	return g
}

func describeNode(n ast.Node) string {
	switch n := n.(type) {
	case *ast.MappingNode, *ast.MappingValueNode:
		return "a mapping"
	case *ast.SequenceNode:
		return "a list"
	case *ast.LiteralNode:
		return "a block string"
	case *ast.StringNode:
		v := n.Value
		if len(v) > 40 {
			v = v[:40] + "..."
		}
		return strconv.Quote(v)
	case *ast.IntegerNode:
		return "the integer " + n.GetToken().Value
	case *ast.FloatNode, *ast.InfinityNode, *ast.NanNode:
		return "the number " + n.GetToken().Value
	case *ast.BoolNode:
		return "the boolean " + n.GetToken().Value
	}
	return n.Type().String()
}

// yamlError turns a go-yaml error into a positioned error.
func (p *parse) yamlError(err error) error {
	var ye yaml.Error
	if !errors.As(err, &ye) {
		return fmt.Errorf("%s: %v: %w", p.path, err, infinity.ErrInvalid)
	}
	tk := ye.GetToken()
	msg := ye.GetMessage()
	field := p.byPos[posKey(tk)]
	var unknown *yaml.UnknownFieldError
	var typ *yaml.TypeError
	var overflow *yaml.OverflowError
	switch {
	case errors.As(err, &unknown):
		name := ""
		if tk != nil {
			name = tk.Value
		}
		parent := ""
		if i := strings.LastIndex(field, "."); i >= 0 {
			parent = field[:i]
		}
		if field == "" {
			field = name
		}
		msg = unknownField(name, parent)
	case errors.As(err, &overflow):
		msg = "the number is too large"
	case errors.As(err, &typ):
		msg = fmt.Sprintf("want %s, got %s", typeName(typ.DstType.String()), describe(tk))
	}
	if field == "" {
		return p.errAt(tk, "", msg)
	}
	return p.errAt(tk, field, msg)
}

func typeName(t string) string {
	switch {
	case strings.HasPrefix(t, "[]"):
		return "a list"
	case strings.HasPrefix(t, "int"), strings.HasPrefix(t, "uint"):
		return "an integer"
	case t == "string":
		return "a string"
	case t == "bool":
		return "a boolean"
	case strings.HasPrefix(t, "float"):
		return "a number"
	case strings.HasPrefix(t, "agentfile.") || strings.HasPrefix(t, "struct"):
		return "a mapping"
	}
	return t
}

func describe(tk *token.Token) string {
	if tk == nil {
		return "another type"
	}
	v := tk.Value
	if len(v) > 40 {
		v = v[:40] + "…"
	}
	switch tk.Type {
	case token.MappingStartType, token.MappingValueType, token.MappingKeyType:
		return "a mapping"
	case token.SequenceStartType, token.SequenceEntryType:
		return "a list"
	case token.NullType:
		return "null"
	case token.BoolType:
		return "boolean " + v
	case token.IntegerType, token.BinaryIntegerType, token.OctetIntegerType, token.HexIntegerType:
		return "integer " + v
	case token.FloatType, token.InfinityType, token.NanType:
		return "number " + v
	}
	return strconv.Quote(v)
}

// errAt builds one positioned error.
func (p *parse) errAt(tk *token.Token, field, msg string) error {
	line, col := 1, 1
	if tk != nil && tk.Position != nil {
		line, col = tk.Position.Line, tk.Position.Column
	}
	return &Error{Path: p.path, Line: line, Col: col, Field: field, Msg: msg}
}

// Error is one problem in an agent file. It wraps infinity.ErrInvalid.
type Error struct {
	Path  string // the agent file
	Line  int
	Col   int
	Field string // the field path, e.g. limits.max_depth ("" when unknown)
	Msg   string
}

func (e *Error) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("%s:%d:%d: %s", e.Path, e.Line, e.Col, e.Msg)
	}
	return fmt.Sprintf("%s:%d:%d: %s: %s", e.Path, e.Line, e.Col, e.Field, e.Msg)
}

// Unwrap returns infinity.ErrInvalid.
func (e *Error) Unwrap() error { return infinity.ErrInvalid }

// known lists the fields of each mapping, for suggestions.
var known = map[string][]string{
	"":                      {"name", "description", "model", "models", "system", "tools", "limits", "budget"},
	"budget":                {"usd", "tokens", "model_calls", "wall", "max_threads"},
	"model":                 {"provider", "id", "script", "demo", "context_window", "max_output", "images", "price", "rate_limit"},
	"model.price":           {"input", "output"},
	"model.rate_limit":      {"concurrent", "rpm", "tpm"},
	"models[]":              {"provider", "id", "context_window", "max_output", "images", "price", "rate_limit"},
	"models[].price":        {"input", "output"},
	"models[].rate_limit":   {"concurrent", "rpm", "tpm"},
	"tools":                 {"rap", "mcp"},
	"tools.rap[]":           {"url", "name", "timeout", "command", "args", "env", "port", "idle"},
	"tools.rap[].timeout":   {"connect", "call"},
	"tools.rap[].env.*":     {"env", "file", "prefix"},
	"tools.mcp[]":           {"url", "name", "headers", "timeout", "command", "args", "env", "idle", "oauth"},
	"tools.mcp[].timeout":   {"connect", "call"},
	"tools.mcp[].headers.*": {"env", "file", "prefix"},
	"tools.mcp[].env.*":     {"env", "file", "prefix"},
	"limits":                {"max_depth", "max_children", "max_tokens", "slice"},
	"limits.slice":          {"completions", "wall"},

	"tools.mcp[].oauth":               {"client_id", "client_secret", "scopes"},
	"tools.mcp[].oauth.client_secret": {"env", "file", "prefix"},
}

// suggest returns the known name closest to name, if it is close.
func suggest(name string, names []string) string {
	best, bestD := "", 3
	for _, n := range names {
		if d := distance(name, n); d < bestD {
			best, bestD = n, d
		}
	}
	return best
}

func distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			c := 1
			if ra[i-1] == rb[j-1] {
				c = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+c)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

// at reports a problem with the value at field (or, when the field is
// absent, at its nearest present ancestor).
func (p *parse) at(field, format string, args ...any) {
	p.errs = append(p.errs, p.errAt(p.token(field), field, fmt.Sprintf(format, args...)))
}

// token returns the token of field's value, or of the nearest ancestor
// that is present (its key when it has one).
func (p *parse) token(field string) *token.Token {
	if e, ok := p.index[field]; ok {
		return e.pos()
	}
	for field != "" {
		i := strings.LastIndexAny(field, ".[")
		if i < 0 {
			field = ""
		} else {
			field = field[:i]
		}
		if e, ok := p.index[field]; ok {
			return e.pos()
		}
	}
	return nil
}

// present reports whether field is written in the file.
func (p *parse) present(field string) bool {
	_, ok := p.index[field]
	return ok
}

var nameRE = regexp.MustCompile(`^[a-z0-9-]{1,64}$`)

func (p *parse) validate(f *File) error {
	switch {
	case f.Name == "":
		p.at("name", "required: the agent's name ([a-z0-9-], 1-64 characters)")
	case !nameRE.MatchString(f.Name):
		p.at("name", "%q is not a valid name: use 1-64 characters of a-z, 0-9 and -", f.Name)
	}

	m := f.Model
	switch m.Provider {
	case "":
		p.at("model.provider", "required: one of %s", strings.Join(ProviderNames, ", "))
	case "scripted":
		switch {
		case m.Script != "" && m.Demo:
			p.at("model.script", "set either script or demo: true, not both")
		case m.Script == "" && !m.Demo:
			p.at("model.script", "required for provider scripted (a script file relative to the agent file), unless demo: true")
		case m.Script != "" && !p.detached:
			resolved := resolve(p.path, m.Script)
			st, err := os.Stat(resolved)
			switch {
			case errors.Is(err, os.ErrNotExist):
				p.at("model.script", "script file %s does not exist", resolved)
			case err != nil:
				p.at("model.script", "script file %s: %v", resolved, err)
			case st.IsDir():
				p.at("model.script", "script file %s is a directory", resolved)
			}
		}
	case "anthropic", "openai", "bedrock":
		if strings.TrimSpace(m.ID) == "" {
			p.at("model.id", "required for provider %s: the model id, such as claude-sonnet-4-5", m.Provider)
		}
		if m.Script != "" {
			p.at("model.script", "only provider scripted takes a script")
		}
		if m.Demo {
			p.at("model.demo", "only provider scripted has a demo")
		}
	default:
		p.at("model.provider", "unknown provider %q: want one of %s", m.Provider, strings.Join(ProviderNames, ", "))
	}
	p.positive("model.context_window", m.ContextWindow)
	p.positive("model.max_output", m.MaxOutput)
	p.price("model.price", m.Price)
	p.rateLimit("model.rate_limit", m.RateLimit)
	p.models(f)

	p.tools(f)

	l := f.Limits
	p.between("limits.max_depth", l.MaxDepth, 1, 32)
	p.between("limits.max_children", l.MaxChildren, 1, 1000)
	p.positive("limits.max_tokens", l.MaxTokens)
	p.between("limits.slice.completions", l.Slice.Completions, 1, 1000)
	if p.present("limits.slice.wall") {
		d, err := time.ParseDuration(strings.TrimSpace(l.Slice.Wall))
		switch {
		case err != nil:
			p.at("limits.slice.wall", "%q is not a Go duration (such as 90s or 5m)", l.Slice.Wall)
		case d < time.Second || d > time.Hour:
			p.at("limits.slice.wall", "%s is out of range: want 1s to 1h", d)
		}
	}
	b := f.Budget
	if b.USD < 0 {
		p.at("budget.usd", "%g is negative", b.USD)
	}
	if b.Tokens < 0 {
		p.at("budget.tokens", "%d is negative", b.Tokens)
	}
	if b.ModelCalls < 0 {
		p.at("budget.model_calls", "%d is negative", b.ModelCalls)
	}
	if b.MaxThreads < 0 {
		p.at("budget.max_threads", "%d is negative", b.MaxThreads)
	}
	if p.present("budget.wall") {
		if d, err := time.ParseDuration(strings.TrimSpace(b.Wall)); err != nil || d <= 0 {
			p.at("budget.wall", "%q is not a positive Go duration (such as 2h or 90m)", b.Wall)
		}
	}
	if len(p.errs) == 0 {
		return nil
	}
	return p.joined()
}

// joined returns the collected errors in file order, joined.
func (p *parse) joined() error {
	slices.SortStableFunc(p.errs, func(a, b error) int {
		ea, _ := a.(*Error)
		eb, _ := b.(*Error)
		if ea == nil || eb == nil {
			return 0
		}
		return cmp.Or(cmp.Compare(ea.Line, eb.Line), cmp.Compare(ea.Col, eb.Col))
	})
	return errors.Join(p.errs...)
}

func (p *parse) between(field string, v, lo, hi int) {
	if p.present(field) && (v < lo || v > hi) {
		p.at(field, "%d is out of range: want %d to %d", v, lo, hi)
	}
}

func (p *parse) positive(field string, v int) {
	if p.present(field) && v <= 0 {
		p.at(field, "%d is out of range: want a positive number", v)
	}
}

func (p *parse) url(field, s string) {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		p.at(field, "%q is not a URL: %v", s, errors.Unwrap(err))
	case u.Scheme != "http" && u.Scheme != "https":
		p.at(field, "%q: want an http or https URL", s)
	case u.Host == "":
		p.at(field, "%q has no host", s)
	}
}

// models checks the models list: each entry a known provider and an id,
// scripted ones only beside a scripted default (they share its script),
// none listed twice or repeating the default.
func (p *parse) models(f *File) {
	seen := map[string]string{}
	if f.Model.Provider != "" && f.Model.ID != "" {
		seen[f.Model.Provider+"/"+f.Model.ID] = "model"
	}
	for i, m := range f.Models {
		at := fmt.Sprintf("models[%d]", i)
		switch {
		case m.Provider == "":
			p.at(at+".provider", "required: one of %s", strings.Join(ProviderNames, ", "))
		case !slices.Contains(ProviderNames, m.Provider):
			p.at(at+".provider", "unknown provider %q: want one of %s", m.Provider, strings.Join(ProviderNames, ", "))
		case m.Provider == "scripted" && f.Model.Provider != "scripted":
			p.at(at+".provider", "a scripted entry shares the file's script, and model is not scripted")
		}
		switch id := strings.TrimSpace(m.ID); {
		case id == "":
			p.at(at+".id", "required: the model id, such as claude-haiku-4-5")
		case m.Provider != "":
			ref := m.Provider + "/" + m.ID
			if _, err := infinity.ParseModelRef(ref); err != nil {
				p.at(at+".id", "%q: spaces and control characters are not allowed", m.ID)
			} else if where, dup := seen[ref]; dup {
				p.at(at+".id", "%s is listed twice (also in %s)", ref, where)
			} else {
				seen[ref] = at
			}
		}
		p.positive(at+".context_window", m.ContextWindow)
		p.positive(at+".max_output", m.MaxOutput)
		p.price(at+".price", m.Price)
		p.rateLimit(at+".rate_limit", m.RateLimit)
	}
}

// rateLimit checks a model's rate limit: positive bounds, at least one.
func (p *parse) rateLimit(field string, r *RateLimit) {
	if !p.present(field) {
		return
	}
	if r == nil || *r == (RateLimit{}) {
		p.at(field, "set at least one of concurrent, rpm and tpm")
		return
	}
	p.positive(field+".concurrent", r.Concurrent)
	p.positive(field+".rpm", r.RPM)
	p.positive(field+".tpm", r.TPM)
}

// price checks a model's price: both fields, non-negative.
func (p *parse) price(field string, pr *pricing.Price) {
	if !p.present(field) {
		return
	}
	for _, name := range []string{"input", "output"} {
		f := field + "." + name
		var v float64
		if pr != nil {
			v = pr.Input
			if name == "output" {
				v = pr.Output
			}
		}
		switch {
		case !p.present(f):
			p.at(f, "required: the %s price in USD per million tokens", name)
		case v < 0:
			p.at(f, "%v is out of range: want a non-negative number (USD per million tokens)", v)
		}
	}
}
