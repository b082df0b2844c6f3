//! The deployment artefacts under deploy/ hold together: the Kubernetes manifests and the compose
//! stack load their Cordon configuration with the real binary (`cordon config`, with the
//! environment and mounted secrets the pods get), their probes, ports, volumes, selectors and
//! secrets name things that exist, and the Prometheus Operator's rules are the tested alert rules.
//! The schemas (kubernetes-validate, the Compose specification), yamllint, hadolint and promtool
//! check the files themselves in scripts/check-deploy.sh.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};
use cordon_e2e::{cordon_bin, repo_root, succeeded};
use serde::Deserialize;
use serde_json::Value;

/// Every document of a YAML file (`---`-separated), as JSON values.
fn documents(relative: &str) -> Result<Vec<Value>> {
    let text = std::fs::read_to_string(repo_root().join(relative))
        .with_context(|| format!("reading {relative}"))?;
    yaml_serde::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).with_context(|| format!("parsing {relative}")))
        .collect()
}

/// The Kubernetes objects of deploy/kubernetes/ (its subfolders included).
fn kubernetes() -> Result<Vec<Value>> {
    let mut out = Vec::new();
    for file in [
        "config.yaml",
        "rbac.yaml",
        "worker.yaml",
        "search.yaml",
        "network-policy.yaml",
        "autoscaling/worker-hpa.yaml",
        "monitoring/service-monitor.yaml",
        "monitoring/prometheus-rule.yaml",
        "examples/secret.yaml",
    ] {
        out.extend(documents(&format!("deploy/kubernetes/{file}"))?);
    }
    // No file is left out of this list.
    let mut listed = 0;
    for dir in ["", "autoscaling", "monitoring", "examples"] {
        listed += std::fs::read_dir(repo_root().join("deploy/kubernetes").join(dir))?
            .filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "yaml"))
            })
            .count();
    }
    assert_eq!(
        listed, 9,
        "every manifest under deploy/kubernetes is checked here"
    );
    Ok(out)
}

fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> Result<&'a Value> {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .with_context(|| format!("{kind} {name}"))
}

/// Whether every label of `selector` (matchLabels, or a Service's plain map) is in `labels`.
fn selects(selector: &Value, labels: &Value) -> bool {
    let wanted = selector.get("matchLabels").unwrap_or(selector);
    wanted
        .as_object()
        .is_some_and(|m| m.iter().all(|(k, v)| labels.get(k) == Some(v)))
}

/// Runs `cordon config` with `config` (TOML text) and `env`, the mounted secrets' directory
/// `mount` standing in a temporary directory with a file for each of `secret_keys`; answers the
/// effective configuration.
fn effective_config(
    config: &str,
    env: &[(String, String)],
    mount: &str,
    secret_keys: &[&str],
) -> Result<toml::Table> {
    let dir = tempfile::tempdir()?;
    let secrets = dir.path().join("secrets");
    std::fs::create_dir(&secrets)?;
    for key in secret_keys {
        std::fs::write(
            secrets.join(key),
            format!("{key}: a secret of at least 32 characters\n"),
        )?;
    }
    let local = |s: &str| s.replace(mount, &secrets.display().to_string());
    let file = dir.path().join("cordon.toml");
    std::fs::write(&file, local(config))?;
    let mut command = Command::new(cordon_bin());
    for (key, _) in std::env::vars() {
        if key.starts_with("CORDON_") {
            command.env_remove(key);
        }
    }
    for (key, value) in env {
        if key != "CORDON_CONFIG" {
            command.env(key, local(value));
        }
    }
    let output = command.arg("--config").arg(&file).arg("config").output()?;
    let output = succeeded("cordon config", output)?;
    let effective: toml::Table = toml::from_str(&String::from_utf8(output.stdout)?)?;
    // Each CORDON_<SECTION>__<KEY>_FILE variable set its option (printed as `***`).
    for (key, _) in env.iter().filter(|(k, _)| k.ends_with("_FILE")) {
        let path = key
            .trim_start_matches("CORDON_")
            .trim_end_matches("_FILE")
            .to_lowercase();
        let mut value = Some(&effective);
        let mut found = None;
        for part in path.split("__") {
            found = value.and_then(|t| t.get(part));
            value = found.and_then(toml::Value::as_table);
        }
        assert_eq!(
            found.and_then(toml::Value::as_str),
            Some("***"),
            "{key} sets {path}"
        );
    }
    Ok(effective)
}

fn port_of(listen: &toml::Value) -> Result<u64> {
    Ok(listen
        .as_str()
        .and_then(|l| l.rsplit(':').next())
        .context("a listen address")?
        .parse()?)
}

fn env_of(container: &Value) -> Vec<(String, String)> {
    container["env"]
        .as_array()
        .map(|vars| {
            vars.iter()
                .filter_map(|v| Some((v["name"].as_str()?.into(), v["value"].as_str()?.into())))
                .collect()
        })
        .unwrap_or_default()
}

/// The user the image runs as (its `USER`).
fn image_user() -> Result<u64> {
    let dockerfile = std::fs::read_to_string(repo_root().join("deploy/docker/Dockerfile"))?;
    let user = dockerfile
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("USER "))
        .context("USER in the Dockerfile")?;
    Ok(user.trim().parse()?)
}

#[test]
fn the_kubernetes_workloads_run_with_their_config_probes_and_secrets() -> Result<()> {
    let objects = kubernetes()?;
    let config = find(&objects, "ConfigMap", "cordon")?["data"]["cordon.toml"]
        .as_str()
        .context("cordon.toml")?
        .to_string();
    let secret = find(&objects, "Secret", "cordon")?;
    let secret_keys: Vec<&str> = secret["stringData"]
        .as_object()
        .context("stringData")?
        .keys()
        .map(String::as_str)
        .collect();
    let roles = ["worker", "indexer", "api", "context", "all"];
    let mut partitions = 0;
    for (kind, name) in [
        ("Deployment", "cordon-worker"),
        ("StatefulSet", "cordon-search"),
    ] {
        let workload = find(&objects, kind, name)?;
        let pod = &workload["spec"]["template"];
        assert!(
            selects(&workload["spec"]["selector"], &pod["metadata"]["labels"]),
            "{name}"
        );
        let spec = &pod["spec"];
        assert_eq!(spec["securityContext"]["runAsNonRoot"], true, "{name}");
        assert_eq!(
            spec["securityContext"]["runAsUser"].as_u64(),
            Some(image_user()?),
            "{name}"
        );
        assert_eq!(spec["automountServiceAccountToken"], false, "{name}");
        let container = &spec["containers"][0];
        let args: Vec<&str> = container["args"]
            .as_array()
            .context("args")?
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(&args[..2], ["run", "--role"], "{name}");
        assert!(
            args[2].split(',').all(|r| roles.contains(&r)),
            "{name}: roles {}",
            args[2]
        );

        // The secrets mount holds every file the environment names.
        let mounts = container["volumeMounts"]
            .as_array()
            .context("volumeMounts")?;
        let mount_of = |volume: &str| {
            mounts
                .iter()
                .find(|m| m["name"] == volume)
                .and_then(|m| m["mountPath"].as_str())
        };
        let volumes = spec["volumes"].as_array().context("volumes")?;
        let secret_volume = volumes
            .iter()
            .find(|v| v["secret"]["secretName"] == "cordon")
            .context("the Secret mounted")?;
        let mount = mount_of(secret_volume["name"].as_str().context("name")?)
            .context("the Secret's mount")?;
        let env = env_of(container);
        for (key, value) in &env {
            if key.ends_with("_FILE") {
                let file = value
                    .strip_prefix(&format!("{mount}/"))
                    .with_context(|| format!("{name}: {key} is outside the secrets' mount"))?;
                assert!(
                    secret_keys.contains(&file),
                    "{name}: {key} names {file}, not in the Secret"
                );
            }
        }
        for line in config.lines().filter(|l| l.contains(mount)) {
            let file = line.rsplit('/').next().unwrap_or("").trim_end_matches('"');
            assert!(
                secret_keys.contains(&file),
                "the config names {file}, not in the Secret"
            );
        }
        let config_volume = volumes
            .iter()
            .find(|v| v["configMap"]["name"] == "cordon")
            .context("the ConfigMap mounted")?;
        let config_mount = mount_of(config_volume["name"].as_str().context("name")?)
            .context("the ConfigMap's mount")?;
        assert!(
            env.contains(&(
                "CORDON_CONFIG".into(),
                format!("{config_mount}/cordon.toml")
            )),
            "{name}: CORDON_CONFIG names the mounted cordon.toml"
        );
        let claims: Vec<&Value> = workload["spec"]["volumeClaimTemplates"]
            .as_array()
            .map(|c| c.iter().map(|c| &c["metadata"]["name"]).collect())
            .unwrap_or_default();
        for m in mounts {
            assert!(
                volumes.iter().any(|v| v["name"] == m["name"]) || claims.contains(&&m["name"]),
                "{name}: mount {} has no volume",
                m["name"]
            );
        }

        // The real binary loads that configuration with that environment.
        let effective = effective_config(&config, &env, mount, &secret_keys)?;
        partitions = effective["kafka"]["partitions"]
            .as_integer()
            .context("partitions")?;
        let grace = spec["terminationGracePeriodSeconds"]
            .as_i64()
            .context("terminationGracePeriodSeconds")?;
        let deadline = effective["shutdown"]["deadline_secs"]
            .as_integer()
            .context("shutdown.deadline_secs")?;
        let pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
            .as_i64()
            .unwrap_or(0);
        assert!(
            grace > pre_stop + deadline,
            "{name}: the grace period outlasts the preStop sleep and shutdown.deadline_secs"
        );
        let ports: BTreeMap<&str, u64> = container["ports"]
            .as_array()
            .context("ports")?
            .iter()
            .filter_map(|p| Some((p["name"].as_str()?, p["containerPort"].as_u64()?)))
            .collect();
        assert_eq!(
            ports.get("ops"),
            Some(&port_of(&effective["ops"]["listen"])?),
            "{name}"
        );
        if args[2].contains("api") {
            assert_eq!(
                ports.get("http"),
                Some(&port_of(&effective["api"]["listen"])?),
                "{name}"
            );
        }
        if args[2].contains("indexer") {
            let index = effective["index"]["dir"].as_str().context("index.dir")?;
            let claim = claims
                .first()
                .and_then(|c| c.as_str())
                .context("an index volume")?;
            assert_eq!(
                mount_of(claim),
                Some(index),
                "{name}: the index is on its own volume"
            );
        }
        for (probe, path) in [
            ("startupProbe", "/healthz"),
            ("livenessProbe", "/healthz"),
            ("readinessProbe", "/readyz"),
        ] {
            let get = &container[probe]["httpGet"];
            assert_eq!(get["path"], path, "{name}: {probe}");
            assert_eq!(get["port"], "ops", "{name}: {probe}");
        }
        assert!(
            container["resources"]["requests"]["memory"].is_string(),
            "{name}"
        );
        assert!(
            container["resources"]["limits"]["memory"].is_string(),
            "{name}"
        );
        // Its budget and Services select its pods and name its ports.
        let labels = &pod["metadata"]["labels"];
        let budget = find(&objects, "PodDisruptionBudget", name)?;
        assert!(
            selects(&budget["spec"]["selector"], labels),
            "{name}: budget"
        );
        for service in objects.iter().filter(|o| o["kind"] == "Service") {
            if selects(&service["spec"]["selector"], labels) {
                for port in service["spec"]["ports"].as_array().context("ports")? {
                    let target = port["targetPort"].as_str().context("a named targetPort")?;
                    assert!(
                        ports.contains_key(target),
                        "{}: port {target}",
                        service["metadata"]["name"]
                    );
                }
            }
        }
    }

    // The autoscaler scales the workers, and not past the partitions.
    let hpa = find(&objects, "HorizontalPodAutoscaler", "cordon-worker")?;
    assert_eq!(hpa["spec"]["scaleTargetRef"]["name"], "cordon-worker");
    let max_replicas = hpa["spec"]["maxReplicas"].as_i64().context("maxReplicas")?;
    assert!(max_replicas <= partitions, "maxReplicas ≤ partitions");

    // The ServiceMonitor finds the ops port of each component's Service.
    let monitor = find(&objects, "ServiceMonitor", "cordon")?;
    let job_label = monitor["spec"]["jobLabel"].as_str().context("jobLabel")?;
    let port = monitor["spec"]["endpoints"][0]["port"]
        .as_str()
        .context("port")?;
    let allowed = monitor["spec"]["selector"]["matchExpressions"][0]["values"]
        .as_array()
        .context("components")?;
    for component in allowed {
        let scraped = objects.iter().filter(|o| {
            o["kind"] == "Service"
                && selects(&monitor["spec"]["selector"], &o["metadata"]["labels"])
                && o["metadata"]["labels"][job_label] == *component
                && o["spec"]["ports"]
                    .as_array()
                    .is_some_and(|p| p.iter().any(|p| p["name"] == port))
        });
        assert_eq!(scraped.count(), 1, "one Service scraped for {component}");
    }
    Ok(())
}

#[test]
fn the_prometheus_operator_rules_are_the_tested_alert_rules() -> Result<()> {
    let objects = kubernetes()?;
    let rule = find(&objects, "PrometheusRule", "cordon")?;
    let tested = &documents("deploy/prometheus/alerts.yml")?[0];
    if rule["spec"]["groups"] != tested["groups"] {
        bail!(
            "deploy/kubernetes/monitoring/prometheus-rule.yaml differs from \
             deploy/prometheus/alerts.yml: copy the groups of the tested file"
        );
    }
    Ok(())
}

#[test]
fn the_compose_stack_runs_with_its_config_and_scrapes_every_role() -> Result<()> {
    let compose = &documents("deploy/compose/compose.yaml")?[0];
    let dir = repo_root().join("deploy/compose");
    for section in ["configs", "secrets"] {
        for (name, entry) in compose[section].as_object().context("section")? {
            let file = entry["file"].as_str().context("file")?;
            assert!(dir.join(file).is_file(), "{section} {name}: {file}");
        }
    }
    let cordon = &compose["x-cordon"];
    let env: Vec<(String, String)> = cordon["environment"]
        .as_object()
        .context("environment")?
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
        .collect();
    let secrets: Vec<&str> = compose["secrets"]
        .as_object()
        .context("secrets")?
        .keys()
        .map(String::as_str)
        .collect();
    let config = std::fs::read_to_string(dir.join("cordon.toml"))?;
    let effective = effective_config(&config, &env, "/run/secrets", &secrets)?;
    let ops = port_of(&effective["ops"]["listen"])?;
    assert_eq!(port_of(&effective["api"]["listen"])?, 8080);
    let services = compose["services"].as_object().context("services")?;
    assert_eq!(services["search"]["ports"][0], "127.0.0.1:8080:8080");
    assert!(services["search"]["volumes"][0]
        .as_str()
        .is_some_and(|v| v.ends_with(effective["index"]["dir"].as_str().unwrap_or("?"))));
    // Prometheus scrapes each role's ops port, as the job the dashboards group by.
    let prometheus = &documents("deploy/compose/prometheus.yml")?[0];
    let jobs = prometheus["scrape_configs"]
        .as_array()
        .context("scrape_configs")?;
    for role in ["worker", "search"] {
        assert!(services.contains_key(role), "{role}");
        let job = jobs
            .iter()
            .find(|j| j["job_name"] == role)
            .with_context(|| format!("a scrape job for {role}"))?;
        // Static targets `<service>:<port>`, or DNS service discovery of the service's name.
        let target = format!("{role}:{ops}");
        let statics = job["static_configs"][0]["targets"]
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t == target.as_str()));
        let dns = &job["dns_sd_configs"][0];
        let discovered = dns["port"].as_u64() == Some(ops)
            && dns["names"]
                .as_array()
                .is_some_and(|n| n.iter().any(|n| n == role));
        assert!(statics || discovered, "{role}: scraped at {target}: {job}");
    }
    assert!(Path::new(&dir.join("../prometheus/alerts.yml")).is_file());
    Ok(())
}
