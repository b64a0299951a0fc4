// Package openai is an infinity.ModelProvider for OpenAI-compatible chat
// completions (POST {BaseURL}/chat/completions with "stream": true), with
// its own small client over net/http.
//
// # Wire
//
// The client speaks exactly what the provider uses: one POST of a JSON
// body (model, messages, tools, max_tokens or max_completion_tokens,
// "stream": true, stream_options.include_usage) with Content-Type and
// Accept application/json, a User-Agent naming this package, and
// "Authorization: Bearer <key>" when there is a key; the answer is a
// text/event-stream of chat.completion.chunk events ("data:" lines, ended
// by a blank line, "\n" or "\r\n" line ends, comments and other fields
// skipped), ended by "data: [DONE]". Of each chunk it reads
// choices[].delta.content and .refusal, delta.tool_calls (index, id,
// function name and argument fragments), finish_reason and usage; a
// chunk with an "error" field is an error event. Lines and events are
// bounded at 32 MiB. Chunks are decoded with encoding/json into small
// structs, through one json.Decoder per stream. The endpoint is BaseURL
// as a directory: .../v1 and .../v1/ both post to .../v1/chat/completions.
//
// Each provider has one *http.Client (Config.HTTPClient, or its own on a
// clone of http.DefaultTransport: HTTP/2 over TLS when the server offers
// it, Config.MaxIdleConns idle connections kept, default 1024, a 10-minute
// response-header timeout), so connections are reused; the rest of a body
// after "data: [DONE]" is read so that its HTTP/1.1 connection goes back
// to the pool. Redirects away from the base URL's scheme, host and port
// are refused, so the key goes nowhere else.
//
// # Servers
//
// It works with the OpenAI API and with servers that speak the same wire
// format: Ollama (http://localhost:11434/v1), vLLM (http://host:8000/v1) and
// llama.cpp's llama-server (http://host:8080/v1). The API key is optional
// except for api.openai.com. Tolerated differences: Ollama sends every
// whole tool call at index 0 and finishes a tool-calling response with
// "stop"; some servers send no usage chunk (Usage is then zero) or no call
// ids (one is made up).
//
// # Configuration
//
//	p, err := openai.New(openai.Config{
//		BaseURL: "http://localhost:11434/v1", // default https://api.openai.com/v1
//		APIKey:  os.Getenv("OPENAI_API_KEY"),  // optional except for OpenAI
//		Models:  []infinity.ModelInfo{{ID: "qwen3:8b", ContextWindow: 32768, MaxOutput: 8192}},
//	})
//
// or FromEnv(models), which reads OPENAI_BASE_URL and OPENAI_API_KEY. The
// first model is the default (CompletionRequest.Model empty); a request for
// a model that is not listed is rejected with infinity.ErrInvalid. The output
// limit sent is CompletionRequest.MaxTokens capped at the model's MaxOutput
// (MaxOutput when zero), as max_tokens, or as max_completion_tokens for
// api.openai.com (Config.MaxTokensParam overrides). Config.MaxRetries (default
// 3) is the client's retry budget, which applies only before a response
// starts. Other OPENAI_* variables (organization, project, custom headers)
// are deliberately not picked up. The key is never logged: Config's and
// Provider's String, GoString and LogValue omit it, and error messages do
// not quote the server's text for 401 and 403 answers (an *Error's own
// message never quotes it).
//
// # Mapping
//
// The system prompt becomes a system message. The history is grouped into
// turns with models/turns: an assistant turn becomes one assistant message
// with its text and tool_calls (arguments as a JSON string); a user turn
// becomes one tool message per result (tool_call_id, the result's text, an
// error result prefixed "Error: " unless it already starts with "error")
// followed by a user message with the text. Only text parts of results are
// sent. Tools become function tools with the spec's JSON schema as
// parameters. Usage is requested with stream_options.include_usage.
//
// The stream yields an StreamText per content (or refusal) delta as it
// arrives; tool-call fragments are gathered by index and yielded as whole
// StreamToolCall events, in index order, when finish_reason arrives; then
// StreamDone with the usage and the stop: "length" is StopMaxTokens,
// "tool_calls" (or any response with calls) StopToolUse, anything else
// StopEnd. Arguments that are not valid JSON (a call cut by the limit) are
// passed as a JSON string so the history stays valid JSON.
//
// # Errors
//
// Before the stream starts, connection failures and 408, 409, 429 and 5xx
// answers are retried Config.MaxRetries times (the server's x-should-retry
// header, "true" or "false", overrides the status), waiting what the
// retry-after-ms or retry-after header asks (a wait over two minutes ends
// the retries) or else backing off from half a second to eight seconds,
// with jitter. If they still fail they wrap infinity.ErrRetryable; a 429
// is an *infinity.RateLimitedError carrying the retry-after. A stream that
// breaks, carries an error event (other than one whose numeric code is a
// final 4xx status, as vLLM and llama.cpp send) or ends without a
// finish_reason also wraps infinity.ErrRetryable; a started stream is
// never retried here. Other HTTP errors are final, wrap an *Error (the
// status, the error object's type, code, param and message, and the
// response header) and say what to check (the API key for 401, the base
// URL and model for 404; 400, 413 and 422 also wrap infinity.ErrInvalid).
// The error body may be {"error": {...}}, {"error": "..."}, vLLM's
// top-level fields or FastAPI's {"detail": "..."}. Cancelling the context
// stops the request, a retry's wait or the stream and yields ctx.Err().
//
// # Imports
//
// The root package, models/turns and models/internal/httpapi (with
// internal/backoff), besides the standard library.
package openai
