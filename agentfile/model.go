package agentfile

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"maps"
	"slices"

	infinity "github.com/infinity-runtime/infinity"
	"github.com/infinity-runtime/infinity/actors"
	"github.com/infinity-runtime/infinity/models/scripted"
	"github.com/infinity-runtime/infinity/pricing"
)

// Network builds a network model provider from the environment (API keys
// are read there, never from the file) for the file's models of that
// provider.
type Network func(models []infinity.ModelInfo) (infinity.ModelProvider, error)

// Providers are the network providers a program is built with, by the
// name an agent file gives in model.provider. The scripted provider is
// always there. Keeping this a parameter lets a binary leave out the SDKs
// it does not need (the Lambda bootstrap's size is budgeted);
// models/network.All has every one.
type Providers map[string]Network

// hints say how to configure a network provider when it fails to start.
var hints = map[string]string{
	"openai":    "set OPENAI_BASE_URL for Ollama, vLLM or llama.cpp, or OPENAI_API_KEY for OpenAI",
	"anthropic": "set ANTHROPIC_API_KEY to your API key",
	"bedrock":   "credentials and region come from the default AWS chain: set AWS_REGION (or a profile's region) and AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY",
}

// Agent returns the engine's agent configuration with the given tools.
// Limits left out of the file are zero, which the engine reads as its
// defaults. Registry.Configure adds the model providers.
func (f *File) Agent(tools []infinity.Tool) actors.Agent {
	return actors.Agent{
		Name:        f.Name,
		Model:       f.Model.ID,
		System:      f.System,
		Tools:       tools,
		MaxDepth:    f.Limits.MaxDepth,
		MaxChildren: f.Limits.MaxChildren,
		MaxTokens:   f.Limits.MaxTokens,
		Budget: actors.Budget{
			Completions: f.Limits.Slice.Completions,
			Wall:        f.Limits.Slice.WallDuration(),
		},
	}
}

// Registry is an agent's models: its default, the others its threads may
// run on, the providers that serve them and the file's own prices.
type Registry struct {
	// Default is the default model as "provider/model". A scripted model
	// without an id in the file has its script's model id.
	Default infinity.ModelRef
	// Models are every model the agent's threads may run on, the default
	// first, as "provider/model".
	Models []string
	// Providers serve the models, by provider id (one provider per id,
	// listing all of that id's models).
	Providers map[string]infinity.ModelProvider
	// Prices are the prices the file gives (model.price, models[].price).
	Prices *pricing.Table
	// Limits are the rate limits the file gives (model.rate_limit,
	// models[].rate_limit), by "provider/model".
	Limits map[string]actors.ModelLimit
	// Unavailable names the providers of the other models (models:) that
	// could not be built, by provider id, with why: most often an API key
	// missing from the environment, or a provider this program was built
	// without (the Lambda bootstrap links only some). The agent runs on
	// its default model; a thread asking for one of these models gets the
	// error (their Providers entry answers every call with it).
	Unavailable map[string]error
}

// unavailable stands for a provider of the file's other models that could
// not be built: it lists its models and fails every completion with why.
type unavailable struct {
	err   error
	infos []infinity.ModelInfo
}

func (u unavailable) Models(context.Context) ([]infinity.ModelInfo, error) { return u.infos, nil }

func (u unavailable) Stream(context.Context, infinity.CompletionRequest) iter.Seq2[infinity.StreamEvent, error] {
	return func(yield func(infinity.StreamEvent, error) bool) { yield(infinity.StreamEvent{}, u.err) }
}

// Allows reports whether the agent's threads may run on model
// ("provider/model").
func (r *Registry) Allows(model string) bool { return slices.Contains(r.Models, model) }

// Configure gives the agent its models: the default provider and model
// id, its provider's name and every provider (actors.Agent.Providers).
func (r *Registry) Configure(a *actors.Agent) {
	a.Provider = r.Providers[r.Default.Provider]
	a.ProviderName = r.Default.Provider
	a.Model = r.Default.Model
	a.Providers = r.Providers
}

// Providers builds the file's model providers by provider id: see
// Registry.
func (f *File) Providers(ctx context.Context, ps Providers) (map[string]infinity.ModelProvider, error) {
	r, err := f.Registry(ctx, ps)
	if err != nil {
		return nil, err
	}
	return r.Providers, nil
}

// Provider builds the provider of the file's default model: scripted (its
// script, or the built-in demo), or the network provider of that name in
// ps (anthropic, openai, bedrock). A known provider this program was built
// without yields an error wrapping infinity.ErrNotImplemented.
func (f *File) Provider(ctx context.Context, ps Providers) (infinity.ModelProvider, error) {
	r, err := f.Registry(ctx, ps)
	if err != nil {
		return nil, err
	}
	return r.Providers[r.Default.Provider], nil
}

// Registry builds the file's models: one provider per provider id with
// every model of that id (the default first), network providers from ps
// (configured from the environment: API keys never come from the file),
// scripted ones from the file's script. A known provider this program was
// built without yields an error wrapping infinity.ErrNotImplemented.
func (f *File) Registry(ctx context.Context, ps Providers) (*Registry, error) {
	specs := append([]ModelSpec{f.Model}, f.Models...)
	var order []string
	byProvider := map[string][]ModelSpec{}
	for _, m := range specs {
		if _, ok := byProvider[m.Provider]; !ok {
			order = append(order, m.Provider)
		}
		byProvider[m.Provider] = append(byProvider[m.Provider], m)
	}
	r := &Registry{Providers: map[string]infinity.ModelProvider{}}
	for _, name := range order {
		var p infinity.ModelProvider
		var err error
		switch name {
		case "scripted":
			p, err = f.scripted(byProvider[name])
		case "anthropic", "openai", "bedrock":
			p, err = f.network(name, byProvider[name], ps)
		default:
			field := "model.provider"
			if name != f.Model.Provider {
				field = "models.provider"
			}
			err = fmt.Errorf("%s: %s %q is unknown: %w", f.path, field, name, infinity.ErrInvalid)
		}
		if err != nil && name != f.Model.Provider && errors.As(err, new(buildError)) {
			// Only the default model must be usable now: a missing key
			// of another provider fails the threads that ask for it.
			if r.Unavailable == nil {
				r.Unavailable = map[string]error{}
			}
			r.Unavailable[name] = err
			p, err = unavailable{err: err, infos: modelInfos(byProvider[name])}, nil
		}
		if err != nil {
			return nil, err
		}
		r.Providers[name] = p
	}
	r.Default = infinity.ModelRef{Provider: f.Model.Provider, Model: f.Model.ID}
	if r.Default.Model == "" {
		ms, err := r.Providers[f.Model.Provider].Models(ctx)
		if err != nil || len(ms) == 0 {
			return nil, fmt.Errorf("%s: model: the model lists no models: %w", f.path, errOr(err, infinity.ErrInvalid))
		}
		r.Default.Model = ms[0].ID
	}
	prices := map[string]pricing.Price{}
	for i, m := range specs {
		ref := m.Provider + "/" + m.ID
		if i == 0 {
			ref = r.Default.String()
		}
		if !slices.Contains(r.Models, ref) {
			r.Models = append(r.Models, ref)
		}
		if m.Price != nil {
			prices[ref] = *m.Price
		}
		if rl := m.RateLimit; rl != nil {
			if r.Limits == nil {
				r.Limits = map[string]actors.ModelLimit{}
			}
			r.Limits[ref] = actors.ModelLimit{Concurrent: rl.Concurrent, RPM: rl.RPM, TPM: rl.TPM}
		}
	}
	t, err := pricing.New(prices)
	if err != nil {
		return nil, fmt.Errorf("%s: model price: %w", f.path, err)
	}
	r.Prices = t
	return r, nil
}

func modelInfos(specs []ModelSpec) []infinity.ModelInfo {
	infos := make([]infinity.ModelInfo, 0, len(specs))
	for _, m := range specs {
		infos = append(infos, modelInfo(m))
	}
	return infos
}

// buildError marks a provider that could not be built here: not built
// into this program, or not configured by the environment (its key, region
// or endpoint), as opposed to a file that is wrong.
type buildError struct{ err error }

func (e buildError) Error() string { return e.err.Error() }
func (e buildError) Unwrap() error { return e.err }

func errOr(err, fallback error) error {
	if err != nil {
		return err
	}
	return fallback
}

// network builds one network provider for its models.
func (f *File) network(name string, specs []ModelSpec, ps Providers) (infinity.ModelProvider, error) {
	build := ps[name]
	if build == nil {
		return nil, buildError{fmt.Errorf("%s: model provider %s is not built into this program: %w", f.path, name, infinity.ErrNotImplemented)}
	}
	infos := modelInfos(specs)
	if err := infinity.ValidateModels(infos); err != nil {
		return nil, fmt.Errorf("%s: models of provider %s: %w", f.path, name, err)
	}
	p, err := build(infos)
	if err != nil {
		return nil, buildError{fmt.Errorf("%s: model provider %s: %w (%s)", f.path, name, err, hints[name])}
	}
	return p, nil
}

// scripted builds the scripted provider: the default model (specs[0] when
// the default is scripted) and every scripted entry of models answer from
// the file's one script.
func (f *File) scripted(specs []ModelSpec) (infinity.ModelProvider, error) {
	var s scripted.Script
	if f.Model.Demo {
		s = scripted.Demo()
	} else {
		var err error
		if s, err = scripted.Load(f.ScriptPath()); err != nil {
			return nil, fmt.Errorf("%s: model.script: %w", f.path, err)
		}
	}
	m := &scriptedModels{byID: map[string]*scripted.Provider{}}
	for i, spec := range specs {
		si := s
		if spec.ID != "" {
			si.Model = spec.ID
		}
		if spec.ContextWindow > 0 {
			si.ContextWindow = spec.ContextWindow
		}
		p, err := scripted.New(si)
		if err != nil {
			return nil, fmt.Errorf("%s: model: %w", f.path, err)
		}
		if len(specs) == 1 {
			return p, nil
		}
		infos, err := p.Models(context.Background())
		if err != nil {
			return nil, fmt.Errorf("%s: model: %w", f.path, err)
		}
		info := infos[0]
		if spec.MaxOutput > 0 {
			info.MaxOutput = min(spec.MaxOutput, info.ContextWindow)
		}
		info.Images = spec.Images
		if _, dup := m.byID[info.ID]; dup {
			return nil, fmt.Errorf("%s: models[%d].id: scripted/%s is listed twice (the script's model is the default): %w", f.path, i-1, info.ID, infinity.ErrInvalid)
		}
		if i == 0 {
			m.def = info.ID
		}
		m.byID[info.ID] = p
		m.infos = append(m.infos, info)
	}
	return m, nil
}

// scriptedModels serves several model ids from one script (a scripted
// provider serves one).
type scriptedModels struct {
	def   string
	byID  map[string]*scripted.Provider
	infos []infinity.ModelInfo
}

func (m *scriptedModels) Models(ctx context.Context) ([]infinity.ModelInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return slices.Clone(m.infos), nil
}

func (m *scriptedModels) Stream(ctx context.Context, req infinity.CompletionRequest) iter.Seq2[infinity.StreamEvent, error] {
	id := req.Model
	if id == "" {
		id = m.def
	}
	p := m.byID[id]
	if p == nil {
		return func(yield func(infinity.StreamEvent, error) bool) {
			yield(infinity.StreamEvent{}, fmt.Errorf("scripted: model %q is not served (this agent's scripted models: %v): %w", req.Model, slices.Sorted(maps.Keys(m.byID)), infinity.ErrInvalid))
		}
	}
	return p.Stream(ctx, req)
}

// modelInfo fills in the defaults of a network model's limits.
func modelInfo(m ModelSpec) infinity.ModelInfo {
	info := infinity.ModelInfo{ID: m.ID, ContextWindow: m.ContextWindow, MaxOutput: m.MaxOutput, Images: m.Images}
	if info.ContextWindow <= 0 {
		info.ContextWindow = DefaultContextWindow
	}
	if info.MaxOutput <= 0 {
		info.MaxOutput = min(DefaultMaxOutput, info.ContextWindow)
	}
	return info
}
