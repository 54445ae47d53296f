#!/usr/bin/env python3
"""Checks what a schema cannot in a rendered overlay: that the pieces fit together and keep
Chime's deployment rules.

A schema validator (kubernetes-validate) says each object is well formed. This says that the
Services, autoscalers and disruption budgets select the Deployments they are meant for, the
probes hit the port Chime listens on, every pod is locked down, no secret value is committed,
each referenced secret key is documented in deploy/README.md, and the tick role stays single.

Usage: policy.py OVERLAY RENDERED.yaml  (OVERLAY: internal_integration or production).
Needs PyYAML; Python 3.11+ (tomllib).
"""

import os
import sys
import tomllib

import yaml

DEPLOY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROLES = ("definition", "execution", "notification", "tick", "web")
SCALED = ("definition", "execution", "notification", "web")
SERVED = ("definition", "web")  # behind a Service and the gateway
PORT = 8080

results = []


def check(name):
    def run(fn):
        try:
            fn()
            results.append((name, None))
            print(f"ok   {name}")
        except Exception as error:  # noqa: BLE001 - every failure is reported, then counted
            results.append((name, error))
            print(f"FAIL {name}: {error}")

    return run


def expect(condition, message):
    if not condition:
        raise AssertionError(message)


def selects(selector, labels):
    return all(labels.get(k) == v for k, v in selector.items())


def main():
    overlay, rendered = sys.argv[1], sys.argv[2]
    with open(rendered, encoding="utf-8") as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)
    name = lambda d: d["metadata"]["name"]  # noqa: E731
    deployments = {name(d): d for d in by_kind.get("Deployment", [])}
    jobs = {name(d): d for d in by_kind.get("Job", [])}
    hpas = by_kind.get("HorizontalPodAutoscaler", [])
    pdbs = by_kind.get("PodDisruptionBudget", [])
    services = {name(d): d for d in by_kind.get("Service", [])}
    configmaps = by_kind.get("ConfigMap", [])
    pods = {**{n: d["spec"]["template"] for n, d in deployments.items()},
            **{n: d["spec"]["template"] for n, d in jobs.items()}}
    with open(os.path.join(DEPLOY, "README.md"), encoding="utf-8") as f:
        readme = f.read()

    print(f"== k8s policy: {overlay}")

    @check("one Deployment per role, each running only its role")
    def _():
        expect(sorted(deployments) == sorted(f"chime-{r}" for r in ROLES), sorted(deployments))
        for role in ROLES:
            args = deployments[f"chime-{role}"]["spec"]["template"]["spec"]["containers"][0]["args"]
            expect(args == ["serve", "--roles", role], (role, args))

    @check("the migration Job runs `chime migrate` once, without restarting in place")
    def _():
        expect(list(jobs) == ["chime-migrate"], list(jobs))
        spec = jobs["chime-migrate"]["spec"]["template"]["spec"]
        expect(spec["containers"][0]["args"] == ["migrate"], spec["containers"][0]["args"])
        expect(spec["restartPolicy"] == "Never", spec["restartPolicy"])

    @check("the ConfigMap names this overlay's profile, which the binary has, and listens on 8080")
    def _():
        expect(len(configmaps) == 1, [name(c) for c in configmaps])
        data = configmaps[0]["data"]
        expect(data["profile"] == overlay, data.get("profile"))
        expect(os.path.exists(os.path.join(DEPLOY, "config", f"{overlay}.toml")), "no profile file")
        config = tomllib.loads(data["chime.toml"])
        expect(config["listen"].rsplit(":", 1)[1] == str(PORT), config["listen"])
        expect(config.get("behind_tls_gateway") is True, "behind_tls_gateway")
        expect(config.get("auth", {}).get("issuer"), "an OIDC issuer (no per-pod local issuer)")
        for pod_name, pod in pods.items():
            for ref in refs(pod, "configMapKeyRef") + [
                {"name": v["configMap"]["name"]} for v in pod["spec"].get("volumes", []) if "configMap" in v
            ]:
                expect(ref["name"] == name(configmaps[0]), (pod_name, ref))

    @check("no Secret is committed; every secret reference is chime-secrets and documented")
    def _():
        expect("Secret" not in by_kind, "a Secret object is rendered")
        for pod_name, pod in pods.items():
            for ref in refs(pod, "secretKeyRef"):
                expect(ref["name"] == "chime-secrets", (pod_name, ref))
                expect(f"`{ref['key']}`" in readme, f"secret key {ref['key']} not in deploy/README.md")

    @check("every pod runs as non-root on a read-only root, no privilege, no capability, no token")
    def _():
        for pod_name, pod in pods.items():
            spec = pod["spec"]
            expect(spec["securityContext"].get("runAsNonRoot") is True, pod_name)
            expect(spec["securityContext"].get("seccompProfile", {}).get("type") == "RuntimeDefault", pod_name)
            expect(spec.get("automountServiceAccountToken") is False, pod_name)
            for c in spec["containers"] + spec.get("initContainers", []):
                sc = c.get("securityContext", {})
                expect(sc.get("readOnlyRootFilesystem") is True, (pod_name, c["name"]))
                expect(sc.get("allowPrivilegeEscalation") is False, (pod_name, c["name"]))
                expect(sc.get("capabilities", {}).get("drop") == ["ALL"], (pod_name, c["name"]))
                expect(not sc.get("capabilities", {}).get("add"), (pod_name, c["name"]))

    @check("every container has CPU and memory requests and limits, and a pinned image")
    def _():
        for pod_name, pod in pods.items():
            for c in pod["spec"]["containers"]:
                for part in ("requests", "limits"):
                    for resource in ("cpu", "memory"):
                        expect(resource in c.get("resources", {}).get(part, {}), (pod_name, part, resource))
                image = c["image"]
                expect(":" in image.rsplit("/", 1)[-1] or "@sha256:" in image, (pod_name, image))
                expect(not image.endswith(":latest"), (pod_name, image))

    @check("long-running roles: liveness /healthz, readiness /readyz, on Chime's port")
    def _():
        for dep_name, dep in deployments.items():
            c = dep["spec"]["template"]["spec"]["containers"][0]
            ports = {p["name"]: p["containerPort"] for p in c["ports"]}
            for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz"),
                                ("startupProbe", "/healthz")):
                get = c[probe]["httpGet"]
                expect(get["path"] == path, (dep_name, probe, get))
                expect(ports.get(get["port"], get["port"]) == PORT, (dep_name, probe, get))

    @check("each Deployment's selector matches its own pods and no other Deployment's")
    def _():
        for dep_name, dep in deployments.items():
            selector = dep["spec"]["selector"]["matchLabels"]
            expect(selects(selector, dep["spec"]["template"]["metadata"]["labels"]), dep_name)
            others = [n for n, d in deployments.items()
                      if n != dep_name and selects(selector, d["spec"]["template"]["metadata"]["labels"])]
            expect(not others, (dep_name, others))

    @check("Services for definition and web select exactly their Deployment, on its http port")
    def _():
        expect(sorted(services) == sorted(f"chime-{r}" for r in SERVED), sorted(services))
        for svc_name, svc in services.items():
            matched = [n for n, d in deployments.items()
                       if selects(svc["spec"]["selector"], d["spec"]["template"]["metadata"]["labels"])]
            expect(matched == [svc_name], (svc_name, matched))
            ports = {p["name"] for p in deployments[svc_name]["spec"]["template"]["spec"]["containers"][0]["ports"]}
            for p in svc["spec"]["ports"]:
                expect(p["targetPort"] in ports, (svc_name, p))

    @check("an autoscaler and a disruption budget for each scaled role, none for tick")
    def _():
        targets = sorted(h["spec"]["scaleTargetRef"]["name"] for h in hpas)
        expect(targets == sorted(f"chime-{r}" for r in SCALED), targets)
        for h in hpas:
            expect(h["spec"]["scaleTargetRef"]["kind"] == "Deployment", name(h))
            expect(1 <= h["spec"]["minReplicas"] <= h["spec"]["maxReplicas"], name(h))
            # A replicas field beside an autoscaler resets the count on every apply.
            expect("replicas" not in deployments[h["spec"]["scaleTargetRef"]["name"]]["spec"], name(h))
        budgeted = []
        for p in pdbs:
            matched = [n for n, d in deployments.items()
                       if selects(p["spec"]["selector"]["matchLabels"], d["spec"]["template"]["metadata"]["labels"])]
            expect(len(matched) == 1, (name(p), matched))
            budgeted += matched
        expect(sorted(budgeted) == sorted(f"chime-{r}" for r in SCALED), budgeted)

    @check("tick stays one instance: replicas 1, Recreate")
    def _():
        spec = deployments["chime-tick"]["spec"]
        expect(spec.get("replicas") == 1, spec.get("replicas"))
        expect(spec["strategy"]["type"] == "Recreate", spec["strategy"])

    @check("everything is in the overlay's namespace, which enforces Pod Security `restricted`")
    def _():
        namespaces = by_kind.get("Namespace", [])
        expect(len(namespaces) == 1, namespaces)
        ns = name(namespaces[0])
        expect(namespaces[0]["metadata"]["labels"].get("pod-security.kubernetes.io/enforce") == "restricted", ns)
        for d in docs:
            if d["kind"] != "Namespace":
                expect(d["metadata"].get("namespace") == ns, (d["kind"], name(d)))

    failed = sum(1 for _, e in results if e)
    print(f"k8s policy {overlay}: {len(results) - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


def refs(pod, kind):
    """Every `kind` (secretKeyRef, configMapKeyRef) in the pod's containers' env."""
    found = []
    for c in pod["spec"]["containers"] + pod["spec"].get("initContainers", []):
        for env in c.get("env", []):
            ref = env.get("valueFrom", {}).get(kind)
            if ref:
                found.append(ref)
    return found


if __name__ == "__main__":
    main()
