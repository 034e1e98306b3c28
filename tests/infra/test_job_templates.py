"""infra/'s work-pool base job templates, accepted by a real Prefect server and rendered by the
workers' own job configuration classes: pool `gpu` on Kubernetes (infra/k8s/gpu-job-template.json)
asks for nvidia.com/gpu, takes S3 credentials from the Secret only and mounts the checkout's volume
at PREFPIPE_ROOT; the Docker example (infra/docker/gpu-job-template.json) asks for the GPUs with a
device request and bind-mounts the checkout."""
from __future__ import annotations

import asyncio
import copy
import json
import uuid
from pathlib import Path

import httpx
import pytest
from docker.types import HostConfig
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.client.schemas.objects import FlowRun
from prefect_docker.worker import DockerWorker, DockerWorkerJobConfiguration
from prefect_kubernetes.worker import KubernetesWorker, KubernetesWorkerJobConfiguration

from tests.conftest import ROOT
from tests.infra.k8s_models import unknown_fields

K8S_TEMPLATE = ROOT / "infra" / "k8s" / "gpu-job-template.json"
DOCKER_TEMPLATE = ROOT / "infra" / "docker" / "gpu-job-template.json"
CREDENTIAL_NAMES = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"}
# Prefect's manifest validator (prefect_kubernetes.worker._get_base_job_manifest) requires these two
# in the pod spec, where Kubernetes does not know them (it drops them); they come from its default.
PREFECT_REQUIRED_EXTRAS = {".spec.template.spec.completions", ".spec.template.spec.parallelism"}


def template(path: Path) -> dict:
    return json.loads(path.read_text())


def schema_without_docs(schema: dict) -> dict:
    return {k: v for k, v in schema.items() if k not in {"default", "description", "examples", "title"}}


@pytest.mark.parametrize("path, worker", [(K8S_TEMPLATE, KubernetesWorker), (DOCKER_TEMPLATE, DockerWorker)],
                         ids=["kubernetes", "docker"])
def test_the_templates_keep_every_variable_of_the_workers_default(path, worker):
    """Started from the worker's default: each of its variables is still there with the same type
    (so a deployment's job variables mean what Prefect's docs say), and so is each field it sets."""
    default, ours = worker.get_default_base_job_template(), template(path)
    for name, schema in default["variables"]["properties"].items():
        assert name in ours["variables"]["properties"], f"{path.name}: variable {name} gone"
        assert schema_without_docs(ours["variables"]["properties"][name]) == schema_without_docs(schema), name
    assert set(default["job_configuration"]) <= set(ours["job_configuration"])
    assert ours["variables"].get("definitions") == default["variables"].get("definitions")


def create_and_render(api_url: str, path: Path, pool_type: str, config_class, values: dict):
    """Create a work pool from the template on the server, read it back, render the job configuration
    with `values` (a deployment's job variables) as the worker does and prepare it for a flow run."""
    async def go():
        async with PrefectClient(api=api_url) as client:
            name = f"{pool_type}-{uuid.uuid4().hex[:8]}"
            await client.create_work_pool(WorkPoolCreate(name=name, type=pool_type,
                                                         base_job_template=template(path)))
            try:
                stored = (await client.read_work_pool(name)).base_job_template
                return await config_class.from_template_and_values(stored, values, client=client)
            finally:
                await client.delete_work_pool(name)

    config = asyncio.run(go())
    config.prepare_for_flow_run(FlowRun(flow_id=uuid.uuid4(), name="gpu-stage-test"))
    return config


def test_the_server_refuses_a_template_that_uses_an_undeclared_variable(prefect_server):
    """The server really checks the templates it is given: without `gpu_limit` declared, pool `gpu`'s
    template is refused (ours pass the same check in the tests below)."""
    broken = template(K8S_TEMPLATE)
    del broken["variables"]["properties"]["gpu_limit"]
    response = httpx.post(f"{prefect_server}/work_pools/", json={
        "name": f"broken-{uuid.uuid4().hex[:8]}", "type": "kubernetes", "base_job_template": broken})
    assert response.status_code == 422 and "gpu_limit" in response.text


def test_the_kubernetes_job_asks_for_a_gpu_takes_the_secret_and_mounts_the_checkout(prefect_server):
    config = create_and_render(prefect_server, K8S_TEMPLATE, "kubernetes",
                               KubernetesWorkerJobConfiguration, {})
    job = config.job_manifest
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    defaults = {k: v.get("default") for k, v in template(K8S_TEMPLATE)["variables"]["properties"].items()}
    root = defaults["prefpipe_root"]

    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert container["envFrom"] == [{"secretRef": {"name": "prefpipe-s3"}}]
    env = {e["name"]: e for e in container["env"]}
    assert not CREDENTIAL_NAMES & set(env), "S3 credentials come from the Secret only"
    assert not [e for e in container["env"] if "valueFrom" in e]
    assert env["PREFPIPE_ROOT"]["value"] == root == container["workingDir"]
    assert env["PYTHONPATH"]["value"] == root
    assert "PREFECT__FLOW_RUN_ID" in env  # the worker's own variables still come first
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert mounts["checkout"] == root
    assert volumes["checkout"]["persistentVolumeClaim"] == {"claimName": "prefpipe-checkout"}
    assert volumes["dshm"]["emptyDir"]["medium"] == "Memory" and mounts["dshm"] == "/dev/shm"
    assert pod["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert pod["nodeSelector"] == {}
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["image"] == defaults["image"]
    assert container["args"] == ["prefect", "flow-run", "execute"]
    assert job["metadata"]["namespace"] == "prefpipe"
    assert set(unknown_fields(job, "V1Job")) == PREFECT_REQUIRED_EXTRAS


def test_a_deployment_chooses_gpus_nodes_and_volume(prefect_server):
    values = {"gpu_limit": 4, "node_selector": {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"},
              "tolerations": [], "pvc_name": "other-checkout", "prefpipe_root": "/mnt/prefpipe",
              "image": "registry.example.com/prefpipe:test", "env": {"EXTRA": "1"}}
    config = create_and_render(prefect_server, K8S_TEMPLATE, "kubernetes", KubernetesWorkerJobConfiguration,
                               values)
    pod = config.job_manifest["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 4
    assert pod["nodeSelector"] == values["node_selector"] and pod["tolerations"] == []
    assert pod["volumes"][0]["persistentVolumeClaim"]["claimName"] == "other-checkout"
    assert container["volumeMounts"][0]["mountPath"] == env["PREFPIPE_ROOT"] == "/mnt/prefpipe"
    assert env["EXTRA"] == "1" and container["image"] == values["image"]


def test_the_docker_job_asks_for_the_gpus_and_mounts_the_checkout(prefect_server):
    config = create_and_render(prefect_server, DOCKER_TEMPLATE, "docker", DockerWorkerJobConfiguration, {})
    kwargs = copy.deepcopy(config.container_create_kwargs)
    host = HostConfig(version="1.44", device_requests=kwargs.pop("device_requests"), binds=config.volumes,
                      shm_size=kwargs.pop("shm_size"))
    assert not kwargs
    (gpus,) = host["DeviceRequests"]
    assert (gpus["Driver"], gpus["Count"], gpus["Capabilities"]) == ("nvidia", -1, [["gpu"]])
    root = config.env["PREFPIPE_ROOT"]
    assert f"{root}:{root}" in host["Binds"]  # the host's checkout, at the same path in the job
    assert config.env["PYTHONPATH"] == root
    assert not CREDENTIAL_NAMES & set(config.env), "S3 credentials come from ~/.aws or the host's IAM role"
    assert any(bind.split(":")[1:] == ["/home/prefpipe/.aws", "ro"] for bind in host["Binds"])
    assert config.image == template(DOCKER_TEMPLATE)["variables"]["properties"]["image"]["default"]
