"""Configuration: Bifrost config.json loads unchanged; what we implement is strict and every
error names its JSON path; env references and env-only mode."""

import json

import pytest

from bifrost_wsgi import config as C

BIFROST_EXAMPLE = {
    "$schema": "https://www.getbifrost.ai/schema",
    "client": {"drop_excess_requests": False, "initial_pool_size": 300, "enable_logging": True,
               "prometheus_labels": ["team"], "allowed_origins": ["*"], "max_request_body_size_mb": 50},
    "providers": {
        "openai": {
            "keys": [{"name": "main", "value": "env.OPENAI_API_KEY", "models": ["gpt-4o-mini", "gpt-4o"], "weight": 0.7},
                     {"value": "env.OPENAI_API_KEY_2", "models": [], "weight": 0.3}],
            "network_config": {"default_request_timeout_in_seconds": 60, "max_retries": 2,
                               "retry_backoff_initial": 500, "retry_backoff_max": 5000, "extra_headers": {"x-team": "a"}},
            "concurrency_and_buffer_size": {"concurrency": 100, "buffer_size": 500},
            "send_back_raw_response": False,
        },
        "anthropic": {"keys": [{"value": "env.ANTHROPIC_API_KEY", "models": [], "weight": 1.0}],
                      "network_config": {"extra_headers": {"anthropic-beta": "prompt-caching-2024-07-31"}}},
        "azure": {"keys": [{"value": "env.AZURE_OPENAI_KEY", "models": ["gpt-4o"], "weight": 1.0,
                            "azure_key_config": {"endpoint": "env.AZURE_OPENAI_ENDPOINT",
                                                 "deployments": {"gpt-4o": "prod-gpt4o"},
                                                 "api_version": "2024-08-01-preview"}}]},
        "bedrock": {"keys": [{"value": "", "models": ["anthropic.claude-3-5-sonnet-20240620-v1:0"], "weight": 1.0,
                              "bedrock_key_config": {"access_key": "env.AWS_ACCESS_KEY_ID",
                                                     "secret_key": "env.AWS_SECRET_ACCESS_KEY", "region": "us-east-1"}}]},
        "vertex": {"keys": [{"value": "", "models": [], "weight": 1.0,
                             "vertex_key_config": {"project_id": "env.GCP_PROJECT", "region": "us-central1",
                                                   "auth_credentials": "env.GCP_SA_JSON"}}]},
        "ollama": {"keys": [], "network_config": {"base_url": "http://localhost:11434"}},
        "groq": {"keys": [{"value": "env.GROQ_API_KEY", "models": [], "weight": 1.0}],
                 "proxy_config": {"type": "http", "url": "http://proxy.internal:3128"}},
        "my-vllm": {"keys": [], "network_config": {"base_url": "http://10.0.0.5:8000"},
                    "custom_provider_config": {"base_provider_type": "openai", "is_key_less": True}},
    },
    "config_store": {"enabled": True, "type": "sqlite", "config": {"path": "./config.db"}},
    "logs_store": {"enabled": False},
    "plugins": [],
    "governance": {"virtual_keys": [{"id": "vk-1", "name": "team-a", "value": "env.VK_TEAM_A", "is_active": True,
                                     "provider_configs": [{"provider": "openai", "allowed_models": ["gpt-4o-mini"],
                                                           "weight": 1}]}],
                   "budgets": []},
}
ENV = {"OPENAI_API_KEY": "sk-1", "OPENAI_API_KEY_2": "sk-2", "ANTHROPIC_API_KEY": "sk-ant", "AZURE_OPENAI_KEY": "az",
       "AZURE_OPENAI_ENDPOINT": "https://my.openai.azure.com", "AWS_ACCESS_KEY_ID": "AKID",
       "AWS_SECRET_ACCESS_KEY": "secret", "GCP_PROJECT": "proj", "GCP_SA_JSON": "{}", "GROQ_API_KEY": "gsk",
       "VK_TEAM_A": "vk-secret"}


def test_bifrost_config_loads_unchanged_with_warnings():
    conf = C.from_dict(BIFROST_EXAMPLE, environ=ENV)
    assert set(conf.providers) == {"openai", "anthropic", "azure", "bedrock", "vertex", "ollama", "groq", "my-vllm"}
    openai = conf.providers["openai"]
    assert [k.value for k in openai.keys] == ["sk-1", "sk-2"]
    assert openai.keys[0].models == ("gpt-4o-mini", "gpt-4o") and openai.keys[0].weight == 0.7
    assert openai.network.timeout == 60 and openai.network.max_retries == 2
    assert openai.network.backoff_initial == 0.5 and openai.network.backoff_max == 5.0
    assert openai.network.stream_idle_timeout == 60 and openai.network.first_token_timeout == 60
    assert openai.concurrency == 100 and openai.buffer_size == 500
    assert conf.providers["azure"].keys[0].settings["endpoint"] == "https://my.openai.azure.com"
    assert conf.providers["groq"].proxy.type == "http"
    assert conf.providers["my-vllm"].row.name == "openai" and conf.providers["my-vllm"].keyless
    assert conf.client.max_request_body_bytes == 50 * 1024 * 1024
    assert conf.virtual_keys[0].value == "vk-secret" and conf.virtual_keys[0].providers == {"openai": ("gpt-4o-mini",)}
    warned = "\n".join(conf.warnings)
    for name in ("plugins", "client.initial_pool_size"):
        assert name in warned
    for implemented in ("config_store", "logs_store", "governance"):  # governance and stores are built now
        assert implemented not in warned
    assert conf.governance.config_store.path.endswith("config.db") and not conf.governance.logs_store.enabled
    assert "$schema" not in warned
    assert "sk-1" not in repr(conf)


@pytest.mark.parametrize("patch,message", [
    ({"providers": {"openai": {"keys": [{"value": "k", "weight": "x"}]}}},
     "providers.openai.keys[0].weight: must be a number"),
    ({"providers": {"openai": {"keys": [{"value": "k", "modles": []}]}}}, "providers.openai.keys[0].modles: unknown key"),
    ({"providers": {"openai": {"keys": [{"value": "k"}], "network_config": {"max_retries": 1.5}}}},
     "providers.openai.network_config.max_retries: must be an integer"),
    ({"providers": {"openai": {"keys": [{"value": "k"}], "network_config": {"base_url": "api.openai.com"}}}},
     "providers.openai.network_config.base_url: must start with http:// or https://"),
    ({"providers": {"openai": {"keys": []}}}, "providers.openai.keys: at least one key is required"),
    ({"providers": {"openai": {"keys": [{"value": ""}]}}}, "providers.openai.keys[0].value: must not be empty"),
    ({"providers": {"openai": {"keys": [{"value": "k"}], "proxy_config": {"type": "ftp"}}}},
     "providers.openai.proxy_config.type: must be one of none, http, socks5, environment"),
    ({"providers": {"openai": {"keys": [{"value": "k"}], "concurrency_and_buffer_size": {"concurrency": 0}}}},
     "providers.openai.concurrency_and_buffer_size.concurrency: must be at least 1"),
    ({"providers": {"nosuch": {"keys": [{"value": "k"}]}}},
     "providers.nosuch: unknown provider (a custom provider needs custom_provider_config)"),
    ({"providers": {"x": {"keys": [{"value": "k"}], "custom_provider_config": {"base_provider_type": "nope"}}}},
     "providers.x.custom_provider_config.base_provider_type: must be one of"),
    ({"providers": {"azure": {"keys": [{"value": "k"}]}}},
     "providers.azure.keys[0].azure_key_config.endpoint: is required for azure"),
    ({"providers": {"sgl": {"keys": []}}}, "providers.sgl.network_config.base_url: is required for sgl"),
    ({"client": {"stream_failover": "always"}}, 'client.stream_failover: must be "off" or "resume"'),
    ({"client": {"circuit_breaker": {"failure_threshold": 0}}},
     "client.circuit_breaker.failure_threshold: must be at least 1"),
    ({"client": {"bogus": 1}}, "client.bogus: unknown key"),
    ({"unknown_section": {}}, "unknown_section: unknown top-level section"),
    ({"providers": {"openai": {"keys": [{"value": "env.MISSING_VAR_1"}]}}},
     "providers.openai.keys[0].value: environment variable MISSING_VAR_1 is not set"),
    ({"governance": {"virtual_keys": [{"id": "a", "value": ""}]}}, "governance.virtual_keys[0].value: must not be empty"),
    ([], "$: the configuration must be a JSON object"),
])
def test_config_errors_name_the_path(patch, message):
    with pytest.raises(C.ConfigError) as info:
        C.from_dict(patch, environ={})
    assert str(info.value).startswith(message)


def test_missing_env_var_error_never_shows_other_secrets():
    with pytest.raises(C.ConfigError) as info:
        C.from_dict({"providers": {"openai": {"keys": [{"value": "env.NOPE"}, {"value": "sk-literal-secret"}]}}}, environ={})
    assert "sk-literal-secret" not in str(info.value)


def test_env_only_mode():
    env = {"OPENAI_API_KEY": "sk-o", "GROQ_API_KEY": "gsk", "AZURE_OPENAI_API_KEY": "az",
           "AZURE_OPENAI_ENDPOINT": "https://e.openai.azure.com", "AWS_BEARER_TOKEN_BEDROCK": "bedrock-token",
           "AWS_REGION": "eu-west-1", "HF_TOKEN": "hf", "OLLAMA_BASE_URL": "http://ollama:11434"}
    conf = C.from_environ(env)
    assert set(conf.providers) == {"openai", "groq", "azure", "bedrock", "huggingface", "ollama"}
    assert conf.providers["ollama"].base_url == "http://ollama:11434" and conf.providers["ollama"].keyless
    assert conf.providers["bedrock"].keys[0].settings["region"] == "eu-west-1"
    assert conf.source == "environment"


def test_env_only_mode_defaults_to_keyless_ollama():
    conf = C.from_environ({})
    assert list(conf.providers) == ["ollama"]
    assert conf.providers["ollama"].base_url == "http://localhost:11434"


def test_env_only_sigv4_bedrock():
    conf = C.from_environ({"AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "s", "AWS_SESSION_TOKEN": "t"})
    b = conf.providers["bedrock"].keys[0].settings
    assert b == {"access_key": "AKID", "secret_key": "s", "region": "us-east-1", "session_token": "t"}


def test_load_from_path_and_bifrost_config_env(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"providers": {"openai": {"keys": [{"value": "k"}]}}}))
    assert set(C.load(str(path), environ={}).providers) == {"openai"}
    assert set(C.load(None, environ={"BIFROST_CONFIG": str(path)}).providers) == {"openai"}


def test_unreadable_and_invalid_json_files(tmp_path):
    with pytest.raises(C.ConfigError, match="cannot read"):
        C.load(str(tmp_path / "missing.json"), environ={})
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(C.ConfigError, match="is not valid JSON"):
        C.load(str(bad), environ={})


def test_every_missing_variable_is_reported_at_once():
    with pytest.raises(C.ConfigError) as info:
        C.from_dict({"providers": {"openai": {"keys": [{"value": "env.A1"}, {"value": "env.A2"}]},
                                   "groq": {"keys": [{"value": "env.G1"}]}}}, environ={})
    assert str(info.value).splitlines() == [
        "providers.openai.keys[0].value: environment variable A1 is not set",
        "providers.openai.keys[1].value: environment variable A2 is not set",
        "providers.groq.keys[0].value: environment variable G1 is not set",
    ]


# env-only mode: <NAME>_BASE_URL for every provider env-only mode can enable
BASE_URL_CASES = [
    ("openai", {"OPENAI_API_KEY": "sk"}),
    ("anthropic", {"ANTHROPIC_API_KEY": "sk"}),
    ("gemini", {"GEMINI_API_KEY": "k"}),
    ("cohere", {"COHERE_API_KEY": "k"}),
    ("mistral", {"MISTRAL_API_KEY": "k"}),
    ("groq", {"GROQ_API_KEY": "k"}),
    ("cerebras", {"CEREBRAS_API_KEY": "k"}),
    ("xai", {"XAI_API_KEY": "k"}),
    ("openrouter", {"OPENROUTER_API_KEY": "k"}),
    ("nebius", {"NEBIUS_API_KEY": "k"}),
    ("parasail", {"PARASAIL_API_KEY": "k"}),
    ("perplexity", {"PERPLEXITY_API_KEY": "k"}),
    ("huggingface", {"HF_TOKEN": "k"}),
    ("azure", {"AZURE_OPENAI_API_KEY": "k", "AZURE_OPENAI_ENDPOINT": "https://e.openai.azure.com"}),
    ("bedrock", {"AWS_BEARER_TOKEN_BEDROCK": "k"}),
    ("ollama", {}),
    ("sgl", {}),  # keyless: its address alone enables it
]


@pytest.mark.parametrize("name,env", BASE_URL_CASES)
def test_env_only_base_url_variable(name, env):
    variable = name.upper() + "_BASE_URL"
    conf = C.from_environ({**env, variable: "http://10.1.2.3:8000/"})
    assert conf.providers[name].network.base_url == "http://10.1.2.3:8000"
    assert conf.providers[name].base_url == "http://10.1.2.3:8000"


def test_env_only_base_url_alone_enables_no_keyed_provider():
    conf = C.from_environ({"OPENAI_BASE_URL": "http://10.1.2.3:8000", "ANTHROPIC_BASE_URL": "http://x"})
    assert set(conf.providers) == {"ollama"}


def test_every_chat_provider_of_env_only_mode_has_a_base_url_case():
    assert {n for n, _ in BASE_URL_CASES} == {n for n, row in C.ROWS.items() if row.chat_supported} - {"vertex"}


PROXY_ENV = ["HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY", "https_proxy", "http_proxy", "no_proxy"]


@pytest.mark.parametrize("variable", PROXY_ENV)
def test_proxy_variables_are_honoured_by_default(variable):
    env = {"OPENAI_API_KEY": "sk", variable: "http://proxy.internal:3128"}
    assert C.from_environ(env).providers["openai"].proxy.type == "environment"
    conf = C.from_dict({"providers": {"openai": {"keys": [{"value": "k"}]}}}, environ=env)
    assert conf.providers["openai"].proxy.type == "environment"


def test_explicit_proxy_config_wins_over_proxy_variables():
    env = {"HTTPS_PROXY": "http://proxy.internal:3128"}
    conf = C.from_dict({"providers": {
        "openai": {"keys": [{"value": "k"}], "proxy_config": {"type": "none"}},
        "groq": {"keys": [{"value": "k"}], "proxy_config": {"type": "http", "url": "http://other:8080"}},
    }}, environ=env)
    assert conf.providers["openai"].proxy.type == "none"
    assert (conf.providers["groq"].proxy.type, conf.providers["groq"].proxy.url) == ("http", "http://other:8080")


def test_without_proxy_variables_there_is_no_proxy():
    assert C.from_environ({"OPENAI_API_KEY": "sk", "HTTPS_PROXY": ""}).providers["openai"].proxy.type == "none"
