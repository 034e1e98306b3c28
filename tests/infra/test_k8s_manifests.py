"""infra/k8s's manifests, checked without a cluster: each is an object the Kubernetes API knows, with
no field it does not (its own models, kubernetes_asyncio); `kubectl kustomize` renders the set where
kubectl is installed; and the pieces agree with each other and with the GPU job template (namespace,
volume, Secret, mount path, pools, the worker's service account and what its Role grants)."""
from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest
import yaml

from tests.conftest import ROOT
from tests.infra.k8s_models import model_name, unknown_fields

K8S = ROOT / "infra" / "k8s"
TEMPLATE = json.loads((K8S / "gpu-job-template.json").read_text())
DEFAULTS = {name: schema.get("default") for name, schema in TEMPLATE["variables"]["properties"].items()}


def kustomization() -> dict:
    return yaml.safe_load((K8S / "kustomization.yaml").read_text())


def manifests() -> dict[tuple[str, str], dict]:
    """(kind, name) -> manifest, for every resource kustomization.yaml lists."""
    found = {}
    for resource in kustomization()["resources"]:
        for doc in yaml.safe_load_all((K8S / resource).read_text()):
            found[(doc["kind"], doc["metadata"]["name"])] = doc
    return found


def pod_spec(manifest: dict) -> dict:
    return manifest["spec"]["template"]["spec"]


def test_every_manifest_is_a_known_kubernetes_object():
    docs = manifests()
    assert {kind for kind, _ in docs} >= {"Namespace", "ConfigMap", "PersistentVolumeClaim", "Job",
                                         "Deployment", "ServiceAccount", "Role", "RoleBinding"}
    for (kind, name), doc in docs.items():
        assert unknown_fields(doc, model_name(doc)) == [], f"{kind}/{name}"
    assert unknown_fields({"spec": {"template": {"spec": {"containers": [{"name": "x", "imag": "y"}]}}}},
                          "V1Job") == [".spec.template.spec.containers[0].imag"]  # the check sees typos


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kustomize_renders_the_set_with_the_image():
    rendered = list(yaml.safe_load_all(subprocess.run(["kubectl", "kustomize", str(K8S)], capture_output=True,
                                                      text=True, check=True).stdout))
    assert len(rendered) == len(manifests())
    (image,) = kustomization()["images"]
    for doc in rendered:
        assert doc["kind"] == "Namespace" or doc["metadata"]["namespace"] == DEFAULTS["namespace"]
        if "template" in doc.get("spec", {}):
            for container in pod_spec(doc)["containers"]:
                assert container["image"] == f"{image['newName']}:{image['newTag']}"


def test_the_pieces_agree_with_the_gpu_job_template():
    docs = manifests()
    namespace = DEFAULTS["namespace"]
    assert ("Namespace", namespace) in docs
    assert all(doc["metadata"].get("namespace") == namespace
               for (kind, _), doc in docs.items() if kind != "Namespace")
    assert docs[("PersistentVolumeClaim", DEFAULTS["pvc_name"])]["spec"]["accessModes"] == ["ReadWriteMany"]
    image_repository = kustomization()["images"][0]["newName"]
    assert DEFAULTS["image"].rsplit(":", 1)[0] == image_repository  # one image, two variants
    for name in ("prefpipe-worker-cpu", "prefpipe-checkout"):
        kind = "Job" if name == "prefpipe-checkout" else "Deployment"
        spec = pod_spec(docs[(kind, name)])
        (container,) = spec["containers"]
        claims = {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in spec["volumes"]}
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        assert claims == {"checkout": DEFAULTS["pvc_name"]}
        assert mounts["checkout"] == DEFAULTS["prefpipe_root"]
        assert {"secretRef": {"name": DEFAULTS["s3_secret_name"]}} in container["envFrom"]
        assert {"name": "PREFPIPE_ROOT", "value": DEFAULTS["prefpipe_root"]} in container["env"]
        assert spec["securityContext"]["runAsNonRoot"] is True


def test_the_workers_serve_the_deployments_pools():
    docs = manifests()
    nightly = next(d for d in yaml.safe_load((ROOT / "infra" / "prefect.yaml").read_text())["deployments"]
                   if d["name"] == "nightly")
    cpu = pod_spec(docs[("Deployment", "prefpipe-worker-cpu")])["containers"][0]["args"]
    gpu_spec = pod_spec(docs[("Deployment", "prefpipe-worker-gpu")])
    gpu = gpu_spec["containers"][0]["args"]
    assert cpu[cpu.index("--pool") + 1] == nightly["work_pool"]["name"]
    assert cpu[cpu.index("--type") + 1] == "process"
    assert gpu[gpu.index("--pool") + 1] == "gpu" and gpu[gpu.index("--type") + 1] == "kubernetes"
    account = gpu_spec["serviceAccountName"]
    binding = docs[("RoleBinding", account)]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account,
                                    "namespace": DEFAULTS["namespace"]}]
    rules = docs[("Role", binding["roleRef"]["name"])]["rules"]
    granted = {(group, resource, verb) for rule in rules for group in rule["apiGroups"]
               for resource in rule["resources"] for verb in rule["verbs"]}
    for needed in [("batch", "jobs", "create"), ("batch", "jobs", "watch"), ("batch", "jobs", "delete"),
                   ("", "pods", "list"), ("", "pods/log", "get"), ("", "events", "list")]:
        assert needed in granted, needed
    observed = {e["name"]: e["value"] for e in gpu_spec["containers"][0]["env"]}
    assert observed["PREFECT_INTEGRATIONS_KUBERNETES_OBSERVER_NAMESPACES"] == DEFAULTS["namespace"]
    config = docs[("ConfigMap", "prefpipe-config")]["data"]
    assert config["PREFECT_API_URL"].endswith("/api") and config["PREFPIPE_GIT_URL"]


def test_the_secret_is_a_template_of_placeholders_applied_by_no_one():
    (secret,) = yaml.safe_load_all((K8S / "s3-secret.template.yaml").read_text())
    assert secret["kind"] == "Secret" and secret["metadata"]["name"] == DEFAULTS["s3_secret_name"]
    assert unknown_fields(secret, "V1Secret") == [] and "data" not in secret
    assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= set(secret["stringData"])
    assert all(re.fullmatch(r"<[^<>]+>", value) for value in secret["stringData"].values())
    assert "s3-secret.template.yaml" not in kustomization()["resources"]
