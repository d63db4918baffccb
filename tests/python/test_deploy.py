"""What a team deploys (deploy/compose, deploy/k8s) is valid for its tools and
agrees with the project: docker-compose (PyPI) accepts the Compose file,
kubernetes-validate (PyPI) the Kubernetes resources of built-in kinds; every
flag given to a DVC Pulse binary is one that binary takes; the topics are the
contract's; the ClickHouse profiles carry the cluster settings the local
cluster uses. The operators' own kinds (Strimzi's Kafka, Altinity's
ClickHouseInstallation) have no schema on the registries this project
installs from; the checks below cover what DVC Pulse relies on in them."""

import os
import pathlib
import re
import subprocess
import xml.etree.ElementTree as ET

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = pathlib.Path(os.environ.get("DVC_BIN_DIR", ROOT / "target" / "release"))
COMPOSE = ROOT / "deploy" / "compose" / "compose.yaml"
K8S = sorted((ROOT / "deploy" / "k8s").glob("*.yaml"))
DOCKER_COMPOSE = ROOT / ".local" / "validators" / "compose" / "bin" / "docker-compose"
PASSWORDS = {"DVC_WRITER_PASSWORD": "w", "DVC_READER_PASSWORD": "r"}


def compose_config():
    out = subprocess.run(
        [DOCKER_COMPOSE, "-f", COMPOSE, "config"], env={**os.environ, **PASSWORDS}, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    return yaml.safe_load(out.stdout)


def k8s_resources():
    return [doc for path in K8S for doc in yaml.safe_load_all(path.read_text()) if doc]


def contract_topics():
    stack = (ROOT / "deploy" / "local" / "stack.sh").read_text()
    return set(re.search(r'^TOPICS="([^"]+)"', stack, re.M).group(1).split())


def test_compose_file_is_valid_and_needs_its_passwords():
    compose_config()
    missing = subprocess.run([DOCKER_COMPOSE, "-f", COMPOSE, "config", "-q"], capture_output=True, text=True,
                             env={k: v for k, v in os.environ.items() if k not in PASSWORDS})
    assert missing.returncode != 0 and "DVC_WRITER_PASSWORD" in missing.stderr


def test_kubernetes_resources_are_valid():
    out = subprocess.run(["kubernetes-validate", "--strict", *K8S], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    passed = out.stdout.count(" passed for resource ")
    # Kubernetes' own API groups have no dot (v1, apps/v1, policy/v1); the operators' do.
    builtin = [r for r in k8s_resources() if "." not in r["apiVersion"].split("/")[0]]
    assert passed == len(builtin) > 5, out.stdout


def dvc_commands():
    """Every command line a manifest gives a DVC Pulse binary."""
    commands = []
    for name, service in compose_config()["services"].items():
        command = service.get("command") or []
        if command and command[0].startswith("dvc-"):
            commands.append((f"compose {name}", command))
    for r in k8s_resources():
        spec = r.get("spec", {})
        pod = spec.get("template", {}).get("spec", {}) if "template" in spec else {}
        for c in pod.get("containers", []):
            if c.get("command", [""])[0].startswith("dvc-"):
                commands.append((f"k8s {r['metadata']['name']}", c["command"] + c.get("args", [])))
    return commands


def test_every_flag_given_to_a_binary_is_one_it_takes():
    commands = dvc_commands()
    assert {c[1][0] for c in commands} == {"dvc-migrate", "dvc-ingest", "dvc-rollup", "dvc-rates-api"}
    for where, command in commands:
        help_text = subprocess.run([BIN / command[0], "--help"], check=True, capture_output=True, text=True).stdout
        for arg in command[1:]:
            if arg.startswith("--"):
                flag = arg.split("=")[0]
                assert re.search(rf"(^|\s){re.escape(flag)}[\s=,<]", help_text, re.M), f"{where}: {command[0]} has no {flag}"


def test_topics_are_the_contracts():
    kafka_topics = {r["metadata"]["name"] for r in k8s_resources() if r["kind"] == "KafkaTopic"}
    assert kafka_topics == contract_topics()
    script = compose_config()["services"]["topics"]["command"][0]
    assert set(re.search(r"for t in ([^;]+);", script).group(1).split()) == contract_topics()
    for r in k8s_resources():
        if r["kind"] == "KafkaTopic":
            assert r["metadata"]["labels"]["strimzi.io/cluster"] == "dvc"
            assert r["spec"]["replicas"] == 3 and r["spec"]["config"]["min.insync.replicas"] == 2
            ingest = next(x for x in k8s_resources() if x["metadata"]["name"] == "dvc-ingest" and x["kind"] == "Deployment")
            assert r["spec"]["partitions"] >= ingest["spec"]["replicas"]


def cluster_settings(path):
    """The cluster settings of each profile of a ClickHouse users file."""
    profiles = ET.parse(path).getroot().find("profiles")
    return {p.tag: {s: p.findtext(s) for s in ("load_balancing", "distributed_product_mode")} for p in profiles}


def test_clickhouse_profiles_carry_the_cluster_settings():
    want = {"load_balancing": "in_order", "distributed_product_mode": "global"}
    local = cluster_settings(ROOT / "deploy" / "cluster" / "clickhouse" / "users.xml")
    assert all(settings == want for settings in local.values()) and len(local) == 2
    compose = cluster_settings(ROOT / "deploy" / "compose" / "clickhouse" / "users.xml")
    assert all(settings == want for settings in compose.values()) and len(compose) == 2
    chi = next(r for r in k8s_resources() if r["kind"] == "ClickHouseInstallation")
    profiles = chi["spec"]["configuration"]["profiles"]
    for profile in ("dvc", "dvc_readonly"):
        assert {k: profiles[f"{profile}/{k}"] for k in want} == want
    users = chi["spec"]["configuration"]["users"]
    assert users["dvc_writer/profile"] == "dvc" and users["dvc_reader/profile"] == "dvc_readonly"
    assert chi["spec"]["configuration"]["clusters"] == [{"name": "dvc", "layout": {"shardsCount": 2, "replicasCount": 2}}]
