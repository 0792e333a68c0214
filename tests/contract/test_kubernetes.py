"""The Kubernetes manifests (deploy/kubernetes) are valid and agree with the code, offline.

No cluster runs here. The kustomization is rendered by `kubectl kustomize` where kubectl is installed, else
by the few kustomize features it uses, in Python (a test checks that both agree where both can run). Every
document is checked against the Kubernetes API schemas that kubernetes-validate ships (strict: an unknown
field fails); the gateway's and nats-server's configurations by the binaries test_deploy.py uses; the rest
against the repository: each service's settings, the Secret's keys, the addresses, the NetworkPolicies.
"""

import copy
import functools
import importlib
import importlib.util
import ipaddress
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml
from pydantic import AliasChoices

from citypair_cli import stack
from citypair_shared.bus_access import ADMIN, password_variable
from tests.contract.gateway_files import config_files, config_text

ROOT = Path(__file__).resolve().parents[2]
KUBE = ROOT / "deploy" / "kubernetes"
KUSTOMIZATION = KUBE / "kustomization.yaml"
SECRET_EXAMPLE = KUBE / "secret.example.yaml"
CNPG_EXAMPLE = KUBE / "examples" / "postgres-cnpg.yaml"
README = KUBE / "README.md"
CADDYFILE = ROOT / "deploy" / "Caddyfile"
NATS_CONF = ROOT / "deploy" / "nats.conf"

NAMESPACE = "citypair"
SECRET = "citypair"
APP_PORT = 8000
GATEWAY_PORT = 8080
SERVICE_NAMES = [spec.name for spec in stack.SERVICES]
WITH_DATABASE = [spec.name for spec in stack.SERVICES if spec.has_database]
# The bus's users and their password variables, as deploy/nats.conf (rendered from the code) has them.
NATS_USERS = dict(re.findall(r"\{user: (\w+), password: \$(\w+)", NATS_CONF.read_text()))
BUS_USERS = sorted(user for user in NATS_USERS if user != ADMIN)
# The oldest Kubernetes minor version the manifests are meant for, and the newest whose schemas are shipped.
KUBERNETES_VERSIONS = ["1.31", kubernetes_validate.latest_version()]
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "Job"}
# Kinds whose schemas are not Kubernetes' own: the CloudNativePG example's (its CRDs are not available offline).
CRD_GROUPS = {"postgresql.cnpg.io"}


def k8s_name(service: str) -> str:
    """A Kubernetes name may not hold an underscore: pilot_zones runs as pilot-zones."""
    return service.replace("_", "-")


def load_all(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def kustomization() -> dict:
    return yaml.safe_load(KUSTOMIZATION.read_text())


GENERATED = [generator["name"] for generator in kustomization().get("configMapGenerator", [])]


# --- rendering --------------------------------------------------------------------------------


def pod_spec(doc: dict) -> dict:
    return doc["spec"]["template"]["spec"]


def containers(doc: dict) -> list[dict]:
    if doc["kind"] not in WORKLOAD_KINDS:
        return []
    spec = pod_spec(doc)
    return [*spec.get("initContainers", []), *spec["containers"]]


def render_in_python() -> list[dict]:
    """What `kubectl kustomize` makes of kustomization.yaml, for the features it uses (generated names unhashed)."""
    config = kustomization()
    unknown = set(config) - {"apiVersion", "kind", "namespace", "resources", "configMapGenerator", "images"}
    assert not unknown, f"kustomization.yaml uses {unknown}: teach render_in_python, or keep it simple"
    docs = [doc for name in config["resources"] for doc in load_all(KUBE / name)]
    for generator in config.get("configMapGenerator", []):
        assert set(generator) <= {"name", "literals", "files"}, generator
        data = dict(literal.split("=", 1) for literal in generator.get("literals", []))
        for entry in generator.get("files", []):
            key, _, path = entry.rpartition("=")
            data[key or Path(path).name] = (KUBE / path).read_text()
        docs.append({"apiVersion": "v1", "data": data, "kind": "ConfigMap", "metadata": {"name": generator["name"]}})
    images = {image["name"]: image for image in config.get("images", [])}
    for doc in docs:
        if doc["kind"] != "Namespace":
            doc["metadata"]["namespace"] = config["namespace"]
        for container in containers(doc):
            name, _, tag = container["image"].partition(":")
            if name in images:
                image = images[name]
                container["image"] = f"{image.get('newName', name)}:{image.get('newTag', tag)}"
    return docs


def kubectl_kustomize() -> str:
    result = subprocess.run(["kubectl", "kustomize", str(KUBE)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def unhashed(text: str) -> str:
    """Generated ConfigMaps' names without the content hash kustomize appends (and puts in every reference)."""
    return re.sub(rf"\b({'|'.join(map(re.escape, GENERATED))})-[a-z0-9]{{10}}\b", r"\1", text)


@functools.cache
def _rendered() -> tuple[dict, ...]:
    if shutil.which("kubectl"):
        return tuple(doc for doc in yaml.safe_load_all(unhashed(kubectl_kustomize())) if doc)
    return tuple(render_in_python())


def manifests() -> list[dict]:
    """The rendered kustomization, each document as `kubectl apply -k deploy/kubernetes` would send it."""
    return copy.deepcopy(list(_rendered()))


def of_kind(kind: str) -> dict[str, dict]:
    return {doc["metadata"]["name"]: doc for doc in manifests() if doc["kind"] == kind}


def workloads() -> list[dict]:
    return [doc for doc in manifests() if doc["kind"] in WORKLOAD_KINDS]


def workload(name: str) -> dict:
    (found,) = [doc for doc in workloads() if doc["metadata"]["name"] == name]
    return found


def container_of(name: str) -> dict:
    (found,) = pod_spec(workload(name))["containers"]
    return found


def secret_example() -> dict[str, str]:
    (secret,) = load_all(SECRET_EXAMPLE)
    return secret["stringData"]


def config_value(name: str, key: str) -> str:
    return of_kind("ConfigMap")[name]["data"][key]


def resolved_env(doc: dict, container: dict) -> dict[str, str]:
    """A container's environment as the kubelet gives it, with the example Secret's values."""
    env = {}
    for var in container.get("env", []):
        if "value" in var:
            env[var["name"]] = var["value"]
            continue
        source = var["valueFrom"]
        if "secretKeyRef" in source:
            env[var["name"]] = secret_example()[source["secretKeyRef"]["key"]]
        elif "configMapKeyRef" in source:
            ref = source["configMapKeyRef"]
            env[var["name"]] = config_value(ref["name"], ref["key"])
        else:
            assert source["fieldRef"]["fieldPath"] == "metadata.name", var
            env[var["name"]] = f"{doc['metadata']['name']}-0"  # the first pod of a StatefulSet
    return env


def env_names(container: dict) -> list[str]:
    return [var["name"] for var in container.get("env", [])]


def walk(node, key: str):
    """Every value under `key`, anywhere in a document."""
    if isinstance(node, dict):
        for k, value in node.items():
            if k == key:
                yield value
            yield from walk(value, key)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value, key)


def pod_cidr() -> str:
    return config_value("citypair-network", "pod-cidr")


def image_tag(image: str) -> str:
    return next(i["newTag"] for i in kustomization()["images"] if i["name"] == image)


def version_of(binary: str, *args: str) -> tuple[int, int]:
    result = subprocess.run([stack.binary(binary), *args], capture_output=True, text=True, timeout=30)
    major, minor = re.search(r"v(\d+)\.(\d+)\.\d+", result.stdout + result.stderr).groups()
    return int(major), int(minor)


# --- the files are what kustomize and the Kubernetes API accept ---------------------------------


def test_kustomization_lists_every_manifest_here_and_reads_nothing_outside():
    config = kustomization()
    listed = sorted(config["resources"])
    here = sorted(p.name for p in KUBE.glob("*.yaml") if p.name not in {"kustomization.yaml", SECRET_EXAMPLE.name})
    assert listed == here, "every manifest in deploy/kubernetes is applied, except the Secret's example"
    assert config["namespace"] == NAMESPACE
    for generator in config["configMapGenerator"]:
        for entry in generator.get("files", []):
            path = (KUBE / entry.rpartition("=")[2]).resolve()
            assert path.is_file() and KUBE in path.parents, f"kustomize reads only files under its folder: {entry}"
    assert not any("examples" in name for name in listed)


@pytest.mark.skipif(not shutil.which("kubectl"), reason="kubectl is not installed: the Python rendering is used")
def test_python_rendering_matches_kubectl_kustomize():
    """The fallback renderer is faithful, and kustomize renamed every reference to a generated ConfigMap."""
    raw = kubectl_kustomize()
    for name in GENERATED:
        assert not re.search(rf"\b{name}\s*$", raw, re.M), f"a reference to {name} that kustomize did not rename"

    def key(doc):
        return doc["kind"], doc["metadata"]["name"]

    by_kubectl = sorted((doc for doc in yaml.safe_load_all(unhashed(raw)) if doc), key=key)
    assert sorted(render_in_python(), key=key) == by_kubectl


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_document_is_valid_for_the_kubernetes_api(version):
    documents = [
        *(("kustomization", doc) for doc in manifests()),
        *((SECRET_EXAMPLE.name, doc) for doc in load_all(SECRET_EXAMPLE)),
        *((CNPG_EXAMPLE.name, doc) for doc in load_all(CNPG_EXAMPLE)),
    ]
    errors, custom = [], []
    for source, doc in documents:
        name = f"{source}: {doc['kind']}/{doc['metadata']['name']}"
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            errors.append(f"{name}: {'.'.join(map(str, error.path))}: {error.message}")
        except kubernetes_validate.SchemaNotFoundError:
            custom.append((source, doc["apiVersion"].split("/")[0]))
    assert not errors, "\n".join(errors)
    # Only the operator's resources in the example go unchecked (test_postgresql_comes_from_an_operator_or_a_service).
    assert {group for _, group in custom} <= CRD_GROUPS and {source for source, _ in custom} <= {CNPG_EXAMPLE.name}


# --- the services ------------------------------------------------------------------------------


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_each_service_runs_two_replicas_behind_a_cluster_ip_service(service):
    name = k8s_name(service)
    deployment = of_kind("Deployment")[name]
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert deployment["spec"]["replicas"] == 2
    assert selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    container = container_of(name)
    assert container["image"] == f"citypair/{service}:{image_tag(f'citypair/{service}')}"
    assert container["ports"] == [{"name": "http", "containerPort": APP_PORT}]
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    svc = of_kind("Service")[name]
    assert svc["spec"].get("type", "ClusterIP") == "ClusterIP"
    assert svc["spec"]["selector"] == selector
    assert svc["spec"]["ports"] == [{"name": "http", "port": APP_PORT, "targetPort": "http"}]


def test_every_image_of_ours_has_one_tag_and_the_others_match_the_tested_binaries():
    tags = {image["newTag"] for image in kustomization()["images"]}
    assert len(tags) == 1, "the services are released together"
    assert {image["name"] for image in kustomization()["images"]} == {f"citypair/{s}" for s in SERVICE_NAMES}
    caddy_major, caddy_minor = version_of("caddy", "version")
    assert container_of("gateway")["image"] == f"caddy:{caddy_major}.{caddy_minor}"
    nats_major, nats_minor = version_of("nats-server", "--version")
    assert container_of("nats")["image"] == f"nats:{nats_major}.{nats_minor}-alpine"


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_each_service_has_requests_and_limits(service):
    resources = container_of(k8s_name(service))["resources"]
    # matching keeps the index of every city (up to 25,000) in each replica's memory.
    memory = ("512Mi", "1Gi") if service == "matching" else ("256Mi", "512Mi")
    assert resources == {"requests": {"cpu": "100m", "memory": memory[0]}, "limits": {"cpu": "1", "memory": memory[1]}}


def test_every_container_has_requests_and_limits():
    for doc in workloads():
        for container in containers(doc):
            resources = container.get("resources", {})
            for bound in ("requests", "limits"):
                assert set(resources.get(bound, {})) == {"cpu", "memory"}, (doc["metadata"]["name"], bound)


def test_every_pod_meets_the_restricted_pod_security_standard():
    labels = of_kind("Namespace")[NAMESPACE]["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    for doc in workloads():
        name, spec = doc["metadata"]["name"], pod_spec(doc)
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["runAsUser"] == 10001, name  # deploy/Dockerfile's user
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert spec["automountServiceAccountToken"] is False, name
        assert not spec.get("hostNetwork") and not spec.get("hostPID") and not spec.get("hostIPC"), name
        for volume in spec.get("volumes", []):
            assert set(volume) - {"name"} <= {"emptyDir", "configMap", "secret", "persistentVolumeClaim"}, name
        for container in containers(doc):
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["capabilities"]["drop"] == ["ALL"], name
            # Only the gateway adds one back: caddy's image sets it on its binary (gateway.yaml says why).
            assert context["capabilities"].get("add", []) == (["NET_BIND_SERVICE"] if name == "gateway" else []), name
            assert not any("hostPort" in port for port in container.get("ports", [])), name


def test_every_pod_that_runs_our_image_writes_to_an_empty_dir_at_tmp_only():
    for doc in workloads():
        spec = pod_spec(doc)
        for container in containers(doc):
            if not container["image"].startswith("citypair/"):
                continue
            (mount,) = container["volumeMounts"]
            assert mount["mountPath"] == "/tmp", doc["metadata"]["name"]
            (volume,) = [v for v in spec["volumes"] if v["name"] == mount["name"]]
            assert "emptyDir" in volume


def settings_class(service: str):
    return importlib.import_module(f"{stack.SERVICE_BY_NAME[service].package}.config").Settings


def settings_variables(service: str) -> set[str]:
    """Every variable a service's Settings read: its prefix and each field's name, or the field's aliases."""
    cls, prefix = settings_class(service), stack.SERVICE_BY_NAME[service].env_prefix
    names = set()
    for field, info in cls.model_fields.items():
        if isinstance(info.validation_alias, AliasChoices):
            names |= {choice for choice in info.validation_alias.choices if isinstance(choice, str)}
        elif isinstance(info.validation_alias, str):  # e.g. CITYPAIR_STREAM_MAX_AGE_DAYS, shared by every service
            names.add(info.validation_alias)
        else:
            names.add(prefix + field.upper())
    return names


def needed_variables(service: str) -> set[str]:
    """What a service must be told in a cluster: whatever it defaults to on loopback, and what production needs."""
    spec = stack.SERVICE_BY_NAME[service]
    needed = {spec.env_prefix + name for name in ("HOST", "PORT", "ENVIRONMENT", "JWKS_URL")}
    for field, info in settings_class(service).model_fields.items():
        on_loopback = isinstance(info.default, str) and "127.0.0.1" in info.default
        if on_loopback and not (field == "nats_url" and service not in BUS_USERS):  # it never connects
            needed.add(spec.env_prefix + field.upper())
    if spec.has_database:
        needed.add(spec.env_prefix + "DATABASE_URL")
    if service in BUS_USERS:
        needed |= {spec.env_prefix + "NATS_URL", spec.env_prefix + "NATS_PASSWORD"}
    if service == "identity":
        needed.add("CITYPAIR_ADMIN_PASSWORD")
    return needed


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_each_service_is_given_the_settings_it_needs_and_only_settings_it_has(service):
    names = env_names(container_of(k8s_name(service)))
    assert len(names) == len(set(names)), names
    unknown = set(names) - settings_variables(service) - {"FORWARDED_ALLOW_IPS"}  # uvicorn's own
    assert not unknown, f"no setting of {service} reads {unknown}"
    missing = needed_variables(service) - set(names)
    assert not missing, f"{service} would run with its loopback or development default for {missing}"
    spec = stack.SERVICE_BY_NAME[service]
    if not spec.has_database:
        assert spec.env_prefix + "DATABASE_URL" not in names
    if service not in BUS_USERS:
        assert spec.env_prefix + "NATS_PASSWORD" not in names


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_each_service_settings_accept_its_environment(service, monkeypatch):
    spec = stack.SERVICE_BY_NAME[service]
    for key in list(os.environ):
        if key.startswith(spec.env_prefix) or key.startswith("CITYPAIR_ADMIN_"):
            monkeypatch.delenv(key)
    env = resolved_env(workload(k8s_name(service)), container_of(k8s_name(service)))
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = settings_class(service)()
    assert (settings.environment, settings.host, settings.port) == ("production", "0.0.0.0", APP_PORT)
    assert env["FORWARDED_ALLOW_IPS"] == pod_cidr()
    assert settings.jwks_url == "http://identity:8000/.well-known/jwks.json"
    if spec.has_database:
        assert settings.database_url.startswith("postgresql+asyncpg://")
    if service in BUS_USERS:
        assert settings.nats_url == "nats://nats:4222"
        assert settings.nats_password.get_secret_value() == secret_example()[password_variable(service)]
    if service == "identity":
        assert settings.admin_password.get_secret_value() == secret_example()["CITYPAIR_ADMIN_PASSWORD"]


def test_secrets_come_from_the_secret_and_every_reference_resolves():
    secret = secret_example()
    used = set()
    for doc in manifests():
        for ref in walk(doc, "secretKeyRef"):
            assert ref["name"] == SECRET and ref["key"] in secret, ref
            used.add(ref["key"])
        for ref in walk(doc, "configMapKeyRef"):
            assert ref["key"] in of_kind("ConfigMap")[ref["name"]]["data"], ref
        for volumes in walk(doc, "volumes"):
            for source in (volume["configMap"] for volume in volumes if "configMap" in volume):
                assert source["name"] in of_kind("ConfigMap") or source.get("optional"), source
        for container in containers(doc):
            assert "envFrom" not in container, "each pod names the keys it gets"
            for var in container.get("env", []):
                if re.search(r"PASSWORD|DATABASE_URL|SECRET|TOKEN", var["name"]):
                    assert "secretKeyRef" in var.get("valueFrom", {}), f"{var['name']} must come from the Secret"
    assert used == set(secret), "the example Secret holds what the pods read, and nothing else"
    (example,) = load_all(SECRET_EXAMPLE)
    assert (example["metadata"]["name"], example["metadata"]["namespace"]) == (SECRET, NAMESPACE)
    assert all("CHANGE-ME" in value for value in secret.values()), "the example holds placeholders only"
    assert not of_kind("Secret"), "the Secret is created by hand (README.md), never applied with placeholders"


def test_nats_gets_every_password_each_service_its_own_and_the_streams_job_the_admins():
    def passwords(name: str) -> set[str]:
        return {var for var in env_names(container_of(name)) if var in NATS_USERS.values()}

    assert passwords("nats") == set(NATS_USERS.values())
    assert set(NATS_USERS) == {ADMIN, *BUS_USERS} and all(password_variable(u) == v for u, v in NATS_USERS.items())
    for service in SERVICE_NAMES:
        own = {password_variable(service)} if service in BUS_USERS else set()
        assert passwords(k8s_name(service)) == own, service
    assert passwords("streams") == {password_variable(ADMIN)}
    assert passwords("gateway") == set()


def address_of(value: str) -> tuple[str, int] | None:
    """(host, port) of a URL or a host:port value; None for anything else."""
    if "://" in value:
        url = urlsplit(value)
        return url.hostname, url.port or {"http": 80, "https": 443, "nats": 4222}[url.scheme]
    if match := re.fullmatch(r"([a-z0-9.-]+):(\d+)", value):
        return match[1], int(match[2])
    return None


def service_ports(host: str) -> set[int] | None:
    """The ports of the Service a cluster-internal name resolves to, from this namespace; None if there is none."""
    services = of_kind("Service")
    name, *rest = host.split(".")
    if rest and rest[0] != NAMESPACE or name not in services:
        return None
    return {port["port"] for port in services[name]["spec"]["ports"]}


def test_every_address_in_the_manifests_names_a_service_and_one_of_its_ports():
    addresses = []
    for doc in workloads():
        for container in containers(doc):
            for var in container.get("env", []):
                if "value" in var and (address := address_of(var["value"])):
                    addresses.append((f"{doc['metadata']['name']}: {var['name']}", *address))
    assert len(addresses) >= 15, addresses
    for where, host, port in addresses:
        ports = service_ports(host)
        assert ports is not None, f"{where}: no Service {host}"
        assert port in ports, f"{where}: Service {host} has no port {port}"


def test_web_calls_the_api_through_the_gateway_and_the_gateway_routes_to_every_service():
    assert resolved_env(workload("web"), container_of("web"))["CITYPAIR_WEB_API_URL"] == "http://gateway:80"
    gateway = container_of("gateway")
    env = resolved_env(workload("gateway"), gateway)
    upstreams = {key: value for key, value in env.items() if key.endswith("_UPSTREAM")}
    assert upstreams == {f"CITYPAIR_{s.upper()}_UPSTREAM": f"{k8s_name(s)}:{APP_PORT}" for s in SERVICE_NAMES}
    caddyfile = config_text(CADDYFILE)
    for variable in env:
        assert "{$" + variable + ":" in caddyfile or "{$" + variable + "}" in caddyfile, f"unread: {variable}"
    assert env["CITYPAIR_GATEWAY_HOST"] == "0.0.0.0"
    assert int(env["CITYPAIR_GATEWAY_PORT"]) == GATEWAY_PORT == gateway["ports"][0]["containerPort"]
    assert env["CITYPAIR_GATEWAY_TRUSTED_PROXIES"] == pod_cidr()
    assert ipaddress.ip_network(pod_cidr()).is_private


def gateway_config_volume() -> dict[str, str]:
    """What the gateway finds in /etc/caddy: each file's path in it, and its text (the ConfigMap, as mounted)."""
    (mount,) = [m for m in container_of("gateway")["volumeMounts"] if m["mountPath"] == "/etc/caddy"]
    (volume,) = [v for v in pod_spec(workload("gateway"))["volumes"] if v["name"] == mount["name"]]
    assert volume["configMap"]["name"] == "gateway-caddyfile"
    data = of_kind("ConfigMap")["gateway-caddyfile"]["data"]
    items = volume["configMap"].get("items") or [{"key": key, "path": key} for key in data]
    return {item["path"]: data[item["key"]] for item in items}


def test_gateway_serves_deploy_caddyfile():
    """deploy/Caddyfile and each file it imports, copied into config/ (kustomize reads nothing outside this
    folder) and mounted where the Caddyfile imports it from."""
    mounted = gateway_config_volume()
    files = config_files(CADDYFILE)
    assert set(mounted) == set(files), f"/etc/caddy holds {sorted(mounted)}, deploy/Caddyfile reads {sorted(files)}"
    for relative, path in files.items():
        copy = KUBE / "config" / relative
        assert mounted[relative] == path.read_text() == copy.read_text(), (
            f"deploy/kubernetes/config/{relative} must be a copy of deploy/{relative}: "
            f"cp deploy/{relative} deploy/kubernetes/config/{relative}"
        )
    assert container_of("gateway")["command"] == [
        "caddy",
        "run",
        "--config",
        "/etc/caddy/Caddyfile",
        "--adapter",
        "caddyfile",
    ]


def test_caddy_accepts_the_caddyfile_with_the_gateway_environment(tmp_path):
    gateway_env = resolved_env(workload("gateway"), container_of("gateway"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITYPAIR_")} | gateway_env
    for relative, text in gateway_config_volume().items():  # as the kubelet lays the volume out
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(text)
    caddyfile = tmp_path / "Caddyfile"
    result = subprocess.run(
        [stack.binary("caddy"), "adapt", "--config", str(caddyfile), "--adapter", "caddyfile"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    (server,) = json.loads(result.stdout)["apps"]["http"]["servers"].values()
    assert server["listen"] == [f"0.0.0.0:{GATEWAY_PORT}"]
    assert server["trusted_proxies"] == {"source": "static", "ranges": [pod_cidr()]}
    dials = {upstream["dial"] for upstreams in walk(server["routes"], "upstreams") for upstream in upstreams}
    assert dials == {f"{k8s_name(s)}:{APP_PORT}" for s in SERVICE_NAMES}


def test_only_the_gateway_is_reachable_from_outside_and_keeps_the_clients_address():
    services = of_kind("Service")
    outside = {name for name, svc in services.items() if svc["spec"].get("type", "ClusterIP") != "ClusterIP"}
    assert outside == {"gateway"}
    gateway = services["gateway"]["spec"]
    assert gateway["type"] == "LoadBalancer"
    # No SNAT to a node's address: sign-in throttling is per client address (gateway.yaml).
    assert gateway["externalTrafficPolicy"] == "Local"
    assert gateway["ports"] == [{"name": "http", "port": 80, "targetPort": "http"}]
    assert not of_kind("Ingress")
    assert of_kind("Deployment")["gateway"]["spec"]["replicas"] == 2


def test_a_disruption_budget_keeps_every_workload_available():
    budgets = {
        json.dumps(pdb["spec"]["selector"]["matchLabels"], sort_keys=True): pdb["spec"]
        for pdb in of_kind("PodDisruptionBudget").values()
    }
    for kind in ("Deployment", "StatefulSet"):
        for name, doc in of_kind(kind).items():
            budget = budgets.pop(json.dumps(doc["spec"]["selector"]["matchLabels"], sort_keys=True), None)
            assert budget is not None, f"{kind} {name} has no PodDisruptionBudget"
            # NATS's JetStream needs a quorum of its three nodes; a Deployment, one pod of its two.
            assert budget == {"minAvailable": 2 if kind == "StatefulSet" else 1, "selector": budget["selector"]}, name
            assert budget["minAvailable"] < doc["spec"]["replicas"], f"{name} could never be drained"
    assert not budgets, f"budgets that select nothing: {budgets}"


# --- NATS and the streams -------------------------------------------------------------------------


def test_nats_runs_three_nodes_with_jetstream_on_their_own_volumes():
    nats = of_kind("StatefulSet")["nats"]
    spec, container = nats["spec"], container_of("nats")
    assert spec["replicas"] == 3 and spec["podManagementPolicy"] == "Parallel"
    headless = of_kind("Service")[spec["serviceName"]]["spec"]
    assert headless["clusterIP"] == "None" and headless["publishNotReadyAddresses"] is True
    assert headless["selector"] == spec["selector"]["matchLabels"] == of_kind("Service")["nats"]["spec"]["selector"]
    (claim,) = spec["volumeClaimTemplates"]
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert mounts["/data"] == claim["metadata"]["name"]
    (config,) = [v for v in pod_spec(nats)["volumes"] if v["name"] == mounts["/etc/nats"]]
    assert config["configMap"]["name"] == "nats-config"
    assert container["command"] == ["nats-server", "--config", "/etc/nats/nats.conf"]
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports == {"client": 4222, "cluster": 6222, "monitor": 8222}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz?js-enabled-only=true", "port": "monitor"}
    assert container["readinessProbe"]["httpGet"]["path"].startswith("/healthz")


def test_nats_configuration_is_deploy_nats_conf_plus_the_cluster():
    assert config_value("nats-config", "citypair.conf") == NATS_CONF.read_text(), (
        "deploy/kubernetes/config/citypair-nats.conf must be a copy of deploy/nats.conf: "
        "cp deploy/nats.conf deploy/kubernetes/config/citypair-nats.conf"
    )
    conf = re.sub(r"#.*", "", config_value("nats-config", "nats.conf"))
    assert re.search(r"^include \./citypair\.conf$", conf, re.M)
    # The copy's users and permissions hold as they are: nothing here may replace them.
    assert "authorization" not in conf and "user" not in conf
    assert re.search(r"^server_name: \$SERVER_NAME$", conf, re.M)
    assert re.search(r'store_dir: "/data"', conf)
    nats = of_kind("StatefulSet")["nats"]
    routes = re.findall(r'"nats://([\w.-]+):(\d+)"', conf)
    headless = nats["spec"]["serviceName"]
    assert routes == [(f"nats-{i}.{headless}", "6222") for i in range(nats["spec"]["replicas"])]
    (pid_file,) = re.findall(r'^pid_file: "([^"]+)"$', conf, re.M)
    mounted = {m["mountPath"] for m in container_of("nats")["volumeMounts"]}
    assert str(Path(pid_file).parent) in mounted
    assert container_of("nats")["lifecycle"]["preStop"]["exec"]["command"][-1] == f"ldm={pid_file}"


def test_nats_server_accepts_the_configuration_with_the_statefulsets_environment(tmp_path):
    for key in ("nats.conf", "citypair.conf"):
        (tmp_path / key).write_text(config_value("nats-config", key))
    env = {k: v for k, v in os.environ.items() if "NATS" not in k}
    env |= resolved_env(workload("nats"), container_of("nats"))
    result = subprocess.run(
        [stack.binary("nats-server"), "-c", str(tmp_path / "nats.conf"), "-t"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_streams_job_declares_the_streams_as_the_admin():
    (job,) = of_kind("Job").values()
    container = container_of(job["metadata"]["name"])
    assert container["command"] == ["python", "-m", "citypair_shared.declare_streams"]
    assert container["image"] == f"citypair/web:{image_tag('citypair/web')}"  # any service's image will do
    env = resolved_env(job, container)
    assert set(env) == {"CITYPAIR_NATS_URL", "CITYPAIR_NATS_REPLICAS", password_variable(ADMIN)}
    assert env["CITYPAIR_NATS_URL"] == "nats://nats:4222"
    nodes = next(d for d in of_kind("StatefulSet").values() if d["metadata"]["name"] == "nats")["spec"]["replicas"]
    assert env["CITYPAIR_NATS_REPLICAS"] == str(nodes), "every stream on every node: one may fail"
    source = Path(importlib.util.find_spec("citypair_shared.declare_streams").origin).read_text()
    assert all(f'"{name}"' in source for name in ("CITYPAIR_NATS_URL", "CITYPAIR_NATS_REPLICAS"))  # what it reads
    assert "password_variable(ADMIN)" in source
    assert pod_spec(job)["restartPolicy"] == "OnFailure" and job["spec"]["backoffLimit"] >= 3


# --- PostgreSQL comes from outside ------------------------------------------------------------------


def test_postgresql_comes_from_an_operator_or_a_service():
    assert not any("postgres" in c["image"] for doc in workloads() for c in containers(doc))
    example = load_all(CNPG_EXAMPLE)
    (cluster,) = [doc for doc in example if doc["kind"] == "Cluster"]
    assert cluster["apiVersion"] == "postgresql.cnpg.io/v1" and cluster["spec"]["instances"] == 3
    namespace = cluster["metadata"]["namespace"]
    assert namespace != NAMESPACE, "its own namespace: citypair's NetworkPolicies stay out of the operator's way"
    secrets = {doc["metadata"]["name"]: doc for doc in example if doc["kind"] == "Secret"}
    roles = {}
    for role in cluster["spec"]["managed"]["roles"]:
        secret = secrets[role["passwordSecret"]["name"]]
        assert secret["type"] == "kubernetes.io/basic-auth" and secret["stringData"]["username"] == role["name"]
        roles[role["name"]] = role
    databases = {doc["spec"]["name"]: doc["spec"] for doc in example if doc["kind"] == "Database"}
    assert sorted(databases) == sorted(f"citypair_{name}" for name in WITH_DATABASE)
    for service in WITH_DATABASE:
        database = databases[f"citypair_{service}"]
        assert database["cluster"]["name"] == cluster["metadata"]["name"]
        assert database["owner"] == service and service in roles
        url = urlsplit(secret_example()[f"CITYPAIR_{service.upper()}_DATABASE_URL"])
        assert url.scheme == "postgresql+asyncpg" and url.username == service
        assert (url.hostname, url.port) == (f"{cluster['metadata']['name']}-rw.{namespace}.svc", 5432)
        assert url.path == f"/citypair_{service}"


# --- NetworkPolicies ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Peer:
    """One end of a connection: a pod (its labels and namespace), or an address outside the cluster."""

    name: str
    labels: tuple[tuple[str, str], ...] | None = None
    namespace: str | None = None
    address: str = "203.0.113.10"


OUTSIDE = Peer("outside")
MANAGED_DATABASE = Peer("a managed database", address="10.20.0.5")
DNS = Peer("kube-dns", (("k8s-app", "kube-dns"),), "kube-system")
CNPG_POD = Peer("cnpg pod", (("cnpg.io/cluster", "postgres"),), "citypair-postgres")
STRANGER = Peer("a pod in another namespace", (("app", "stranger"),), "elsewhere")


def pod(name: str) -> Peer:
    labels = workload(name)["spec"]["template"]["metadata"]["labels"]
    return Peer(name, tuple(sorted(labels.items())), NAMESPACE)


def selects(selector: dict, labels: dict[str, str]) -> bool:
    if not selector.get("matchLabels", {}).items() <= labels.items():
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
        held = {"In": key in labels and labels[key] in values, "NotIn": labels.get(key) not in values}
        held |= {"Exists": key in labels, "DoesNotExist": key not in labels}
        if not held[operator]:
            return False
    return True


def peer_matches(peers: list[dict] | None, peer: Peer) -> bool:
    if not peers:  # no from/to: anyone
        return True
    for entry in peers:
        if "ipBlock" in entry:
            block = entry["ipBlock"]
            address = ipaddress.ip_address(peer.address)
            inside = address in ipaddress.ip_network(block["cidr"])
            if (
                peer.labels is None
                and inside
                and not any(address in ipaddress.ip_network(e) for e in block.get("except", []))
            ):
                return True
            continue
        if peer.labels is None:
            continue
        if "namespaceSelector" in entry:
            in_namespace = selects(entry["namespaceSelector"], {"kubernetes.io/metadata.name": peer.namespace})
        else:
            in_namespace = peer.namespace == NAMESPACE
        if in_namespace and selects(entry.get("podSelector", {}), dict(peer.labels)):
            return True
    return False


def ports_match(ports: list[dict] | None, port: int, protocol: str) -> bool:
    if not ports:
        return True
    return any(p.get("protocol", "TCP") == protocol and p.get("port") in (None, port) for p in ports)


def allowed(direction: str, pod_end: Peer, other: Peer, port: int, protocol: str) -> bool:
    """Whether the policies that select `pod_end` let it send to (Egress) or receive from (Ingress) `other`."""
    if pod_end.labels is None or pod_end.namespace != NAMESPACE:
        return True  # not selected by any policy here
    labels = dict(pod_end.labels)
    policies = [
        doc["spec"]
        for doc in of_kind("NetworkPolicy").values()
        if direction in doc["spec"]["policyTypes"] and selects(doc["spec"]["podSelector"], labels)
    ]
    if not policies:
        return True
    rules, peers = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    return any(
        peer_matches(rule.get(peers), other) and ports_match(rule.get("ports"), port, protocol)
        for policy in policies
        for rule in policy.get(rules, [])
    )


def reachable(source: Peer, target: Peer, port: int, protocol: str = "TCP") -> bool:
    return allowed("Egress", source, target, port, protocol) and allowed("Ingress", target, source, port, protocol)


def expected_connections() -> list[tuple[Peer, Peer, int, bool]]:
    """(from, to, port, allowed): the network the services need, and nothing more, derived from the code."""
    gateway, web, nats, streams = pod("gateway"), pod("web"), pod("nats"), pod("streams")
    services = {name: pod(k8s_name(name)) for name in SERVICE_NAMES}
    identity = services["identity"]
    cases = [
        (OUTSIDE, gateway, GATEWAY_PORT, True),
        (STRANGER, gateway, GATEWAY_PORT, True),
        (OUTSIDE, nats, 4222, False),
        (STRANGER, nats, 4222, False),
        (web, gateway, GATEWAY_PORT, True),
        (gateway, nats, 4222, False),
        (gateway, MANAGED_DATABASE, 5432, False),
        (gateway, OUTSIDE, 443, False),
        (nats, nats, 6222, True),
        (nats, OUTSIDE, 443, False),
        (nats, identity, APP_PORT, False),
        (streams, nats, 4222, True),
        (streams, nats, 6222, False),
        (streams, identity, APP_PORT, False),
    ]
    for name, service in services.items():
        cases += [
            (OUTSIDE, service, APP_PORT, False),
            (STRANGER, service, APP_PORT, False),
            (gateway, service, APP_PORT, True),
            (service, identity, APP_PORT, True),  # JWKS
            (service, nats, 4222, name in BUS_USERS),
            (service, nats, 6222, False),
            (service, MANAGED_DATABASE, 5432, name in WITH_DATABASE),
            (service, CNPG_POD, 5432, name in WITH_DATABASE),
            (service, OUTSIDE, 443, False),
            (service, gateway, GATEWAY_PORT, name == "web"),  # web calls the API through the gateway
        ]
        cases += [
            (service, other, APP_PORT, False)
            for other_name, other in services.items()
            if other_name not in {name, "identity"}
        ]
    return cases


def test_network_policies_deny_by_default_and_allow_only_what_the_services_need():
    policies = of_kind("NetworkPolicy")
    assert policies["default-deny"]["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    for policy in policies.values():
        assert policy["spec"]["policyTypes"], "explicit policy types: no guessing from the rules"
        for port in walk(policy, "ports"):
            assert all(isinstance(p["port"], int) for p in port), (
                "pod ports by number: the evaluator below compares them"
            )
    wrong = [
        f"{source.name} -> {target.name}:{port} should be {'allowed' if expected else 'denied'}"
        for source, target, port, expected in expected_connections()
        if reachable(source, target, port) != expected
    ]
    assert not wrong, "\n".join(wrong)


def test_every_pod_resolves_names():
    for doc in workloads():
        source = pod(doc["metadata"]["name"])
        assert reachable(source, DNS, 53, "UDP") and reachable(source, DNS, 53, "TCP"), source.name


def test_readme_says_how_to_apply_what_to_provide_and_what_was_not_tried():
    text = README.read_text()
    for needed in (
        "kubectl apply -k deploy/kubernetes",
        "secret.example.yaml",
        "pod-cidr",
        "examples/postgres-cnpg.yaml",
    ):
        assert needed in text, needed
    assert re.search(r"offline", text, re.I) and re.search(r"not (been )?(tried|run|tested)", text, re.I)
