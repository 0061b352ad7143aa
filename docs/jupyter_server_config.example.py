# Example RubberDuck configuration. Copy to ~/.jupyter/jupyter_server_config.py (one user)
# or to a system config dir such as /etc/jupyter/ (an admin, for every user of a hub).
# Every value here can also come from the environment; these traitlets win over it.
c = get_config()  # noqa: F821  (provided by Jupyter when it loads this file)

# The model, by its litellm name. Empty: $RUBBERDUCK_MODEL; empty too: no model.
c.RubberDuckApp.model = "openai/gpt-4o-mini"

# An OpenAI-compatible endpoint or a team's LiteLLM proxy (then model = "openai/<name>").
# c.RubberDuckApp.api_base = "http://litellm-proxy.internal:4000/v1"

# Prefer the provider's own variable (OPENAI_API_KEY, ...) set in the server's environment;
# a key set here is never sent to the browser or written to logs.
# c.RubberDuckApp.api_key = ""

c.RubberDuckApp.request_timeout = 120.0  # seconds a model call may take in all
c.RubberDuckApp.max_output_tokens = 0  # cap per answer; 0 = provider default

# Limits on what clients may send.
c.RubberDuckApp.max_frame_bytes = 262144
c.RubberDuckApp.max_message_chars = 100000
c.RubberDuckApp.max_turns_per_connection = 4

# Give kernels the server URL and a scoped token so %%duck works with no setup.
c.RubberDuckApp.export_kernel_env = True
