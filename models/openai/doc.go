// Package openai is an infinity.ModelProvider for OpenAI-compatible chat
// completions (POST {BaseURL}/chat/completions with "stream": true), built on
// the official SDK, github.com/openai/openai-go/v3.
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
// 3) is the SDK's own retry budget, which applies only before a response
// starts. Other OPENAI_* variables (organization, project, custom headers)
// are deliberately not picked up. The key is never logged: Config's String,
// GoString and LogValue omit it, and error messages do not quote the
// server's text for 401 and 403 answers.
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
// 408, 409, 429, 5xx and connection failures (after the SDK's retries), a
// stream that breaks, carries an error event, or ends without a
// finish_reason, wrap infinity.ErrRetryable. Other HTTP errors are final,
// wrap the SDK's *openai.Error and say what to check (the API key for 401,
// the base URL and model for 404; 400, 413 and 422 also wrap
// infinity.ErrInvalid). Cancelling the context stops the request or the
// stream and yields ctx.Err().
//
// # Imports
//
// The root package, models/turns, the standard library and
// github.com/openai/openai-go/v3 (its option and packages/ssestream
// packages).
package openai
