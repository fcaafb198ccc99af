//! The rule registry. Each rule is data (ID, severity, message, why, a firing
//! and a passing example) plus a check function.

use super::{ContextFacts, Ctx, Hits, LabelType, Rule, Run, Severity};
use crate::dockerfile::shell::Command;
use crate::dockerfile::{Body, CommandForm, ImageRef, Instruction, Keyword, Stage};
use std::collections::{HashMap, HashSet};

/// A Dockerfile to run a rule on, with the config and context it needs.
#[derive(Clone, Copy, Debug)]
pub struct Example {
    pub dockerfile: &'static str,
    /// `.tug-lint.yaml` text ("" for the defaults).
    pub config: &'static str,
    /// Context facts: (scanned, has .dockerignore, large).
    pub context: (bool, bool, bool),
}

const fn ex(dockerfile: &'static str) -> Example {
    Example {
        dockerfile,
        config: "",
        context: (false, false, false),
    }
}

impl Example {
    pub fn facts(&self) -> ContextFacts {
        let (scanned, has_dockerignore, large) = self.context;
        ContextFacts {
            scanned,
            has_dockerignore,
            large: large.then(|| "it has a target/ directory".to_string()),
        }
    }
}

use Severity::{Error, Info, Style, Warning};

pub static RULES: &[Rule] = &[
    Rule {
        id: "DL1000",
        severity: Error,
        message: "Invalid Dockerfile",
        why: "The builder rejects lines it cannot parse.",
        check: dl1000,
        fires: ex("FROM debian:12\nRUN\n"),
        passes: ex("FROM debian:12\nRUN true\n"),
    },
    Rule {
        id: "DL3000",
        severity: Error,
        message: "Use absolute WORKDIR",
        why: "A relative WORKDIR depends on the previous one and is easy to get wrong.",
        check: dl3000,
        fires: ex("FROM debian:12\nWORKDIR app\n"),
        passes: ex("FROM debian:12\nWORKDIR /app\n"),
    },
    Rule {
        id: "DL3001",
        severity: Info,
        message: "This command makes no sense in a container (ssh, vim, shutdown, service, ps, free, top, kill, mount, ifconfig)",
        why: "Interactive and system-management tools do nothing useful at build time.",
        check: dl3001,
        fires: ex("FROM debian:12\nRUN service nginx start\n"),
        passes: ex("FROM debian:12\nRUN nginx -t\n"),
    },
    Rule {
        id: "DL3002",
        severity: Warning,
        message: "Last USER should not be root",
        why: "A process running as root in the container is root on escape.",
        check: dl3002,
        fires: ex("FROM debian:12\nUSER root\n"),
        passes: ex("FROM debian:12\nUSER root\nRUN true\nUSER 10001\n"),
    },
    Rule {
        id: "DL3003",
        severity: Warning,
        message: "Use WORKDIR to switch to a directory",
        why: "`cd` in RUN only lasts for that RUN; WORKDIR is explicit and persists.",
        check: dl3003,
        fires: ex("FROM debian:12\nRUN cd /tmp && make\n"),
        passes: ex("FROM debian:12\nWORKDIR /tmp\nRUN make\n"),
    },
    Rule {
        id: "DL3004",
        severity: Error,
        message: "Do not use sudo as it leads to unpredictable behavior. Use a tool like gosu to enforce root",
        why: "sudo needs a TTY and a sudoers setup; builds already run as the USER in force.",
        check: dl3004,
        fires: ex("FROM debian:12\nRUN sudo apt-get update\n"),
        passes: ex("FROM debian:12\nRUN apt-get update\n"),
    },
    Rule {
        id: "DL3006",
        severity: Warning,
        message: "Always tag the version of an image explicitly",
        why: "An untagged image means `latest`, which changes under you.",
        check: dl3006,
        fires: ex("FROM debian\n"),
        passes: ex("FROM debian:12 AS base\nFROM base\n"),
    },
    Rule {
        id: "DL3007",
        severity: Warning,
        message: "Using latest is prone to errors if the image will ever update. Pin the version explicitly to a release tag",
        why: "`latest` moves, so the same Dockerfile builds different images over time.",
        check: dl3007,
        fires: ex("FROM debian:latest\n"),
        passes: ex("FROM debian:12\n"),
    },
    Rule {
        id: "DL3008",
        severity: Warning,
        message: "Pin versions in apt-get install",
        why: "Unpinned packages make rebuilds pick up whatever the mirror has that day.",
        check: dl3008,
        fires: ex("FROM debian:12\nRUN apt-get install -y curl\n"),
        passes: ex("FROM debian:12\nRUN apt-get install -y curl=7.88.1-10\n"),
    },
    Rule {
        id: "DL3009",
        severity: Info,
        message: "Delete the apt-get lists after installing something",
        why: "The package lists add tens of MB to the layer and go stale anyway.",
        check: dl3009,
        fires: ex("FROM debian:12\nRUN apt-get update && apt-get install -y curl=7.88.1-10\n"),
        passes: ex("FROM debian:12\nRUN apt-get update && apt-get install -y curl=7.88.1-10 && rm -rf /var/lib/apt/lists/*\n"),
    },
    Rule {
        id: "DL3010",
        severity: Info,
        message: "Use ADD for extracting archives into an image",
        why: "COPY then `tar -x` keeps the archive in a layer; ADD extracts in one step.",
        check: dl3010,
        fires: ex("FROM debian:12\nCOPY app.tar.gz /tmp/\nRUN tar -xzf /tmp/app.tar.gz -C /opt\n"),
        passes: ex("FROM debian:12\nADD app.tar.gz /opt/\n"),
    },
    Rule {
        id: "DL3011",
        severity: Error,
        message: "Valid UNIX ports range from 0 to 65535",
        why: "The engine rejects the image's exposed port at run time.",
        check: dl3011,
        fires: ex("FROM debian:12\nEXPOSE 80000\n"),
        passes: ex("FROM debian:12\nEXPOSE 8080/tcp 9000-9010\n"),
    },
    Rule {
        id: "DL3012",
        severity: Error,
        message: "Multiple HEALTHCHECK instructions",
        why: "Only the last HEALTHCHECK counts; the others mislead readers.",
        check: dl3012,
        fires: ex("FROM debian:12\nHEALTHCHECK CMD true\nHEALTHCHECK CMD false\n"),
        passes: ex("FROM debian:12\nHEALTHCHECK CMD true\n"),
    },
    Rule {
        id: "DL3013",
        severity: Warning,
        message: "Pin versions in pip. Instead of `pip install <package>` use `pip install <package>==<version>` or `pip install --requirement <requirements file>`",
        why: "Unpinned Python packages change between builds.",
        check: dl3013,
        fires: ex("FROM python:3.12\nRUN pip install --no-cache-dir requests\n"),
        passes: ex("FROM python:3.12\nRUN pip install --no-cache-dir requests==2.32.3 -r requirements.txt\n"),
    },
    Rule {
        id: "DL3014",
        severity: Warning,
        message: "Use the -y switch to avoid manual input `apt-get -y install <package>`",
        why: "Without -y apt-get waits for an answer the build never gives.",
        check: dl3014,
        fires: ex("FROM debian:12\nRUN apt-get install curl=7.88.1-10\n"),
        passes: ex("FROM debian:12\nRUN apt-get install -qy curl=7.88.1-10\n"),
    },
    Rule {
        id: "DL3015",
        severity: Info,
        message: "Avoid additional packages by specifying `--no-install-recommends`",
        why: "Recommended packages bloat the image with things nobody asked for.",
        check: dl3015,
        fires: ex("FROM debian:12\nRUN apt-get install -y curl=7.88.1-10\n"),
        passes: ex("FROM debian:12\nRUN apt-get install -y --no-install-recommends curl=7.88.1-10\n"),
    },
    Rule {
        id: "DL3016",
        severity: Warning,
        message: "Pin versions in npm. Instead of `npm install <package>` use `npm install <package>@<version>`",
        why: "Unpinned npm packages change between builds.",
        check: dl3016,
        fires: ex("FROM node:22\nRUN npm install -g typescript\n"),
        passes: ex("FROM node:22\nRUN npm install -g typescript@5.6.3 && npm ci\n"),
    },
    Rule {
        id: "DL3018",
        severity: Warning,
        message: "Pin versions in apk add. Instead of `apk add <package>` use `apk add <package>=<version>`",
        why: "Unpinned Alpine packages change between builds.",
        check: dl3018,
        fires: ex("FROM alpine:3.20\nRUN apk add --no-cache curl\n"),
        passes: ex("FROM alpine:3.20\nRUN apk add --no-cache curl=8.9.1-r0\n"),
    },
    Rule {
        id: "DL3019",
        severity: Info,
        message: "Use the `--no-cache` switch to avoid the need to use `--update` and remove `/var/cache/apk/*` when done installing packages",
        why: "The apk index cache otherwise stays in the layer.",
        check: dl3019,
        fires: ex("FROM alpine:3.20\nRUN apk add curl=8.9.1-r0\n"),
        passes: ex("FROM alpine:3.20\nRUN apk add --no-cache curl=8.9.1-r0\n"),
    },
    Rule {
        id: "DL3020",
        severity: Error,
        message: "Use COPY instead of ADD for files and folders",
        why: "ADD also fetches URLs and unpacks archives; COPY does only what it says.",
        check: dl3020,
        fires: ex("FROM debian:12\nADD app.py /app/\n"),
        passes: ex("FROM debian:12\nCOPY app.py /app/\nADD rootfs.tar.xz /\n"),
    },
    Rule {
        id: "DL3021",
        severity: Error,
        message: "COPY with more than 2 arguments requires the last argument to end with /",
        why: "With several sources the destination must be a directory.",
        check: dl3021,
        fires: ex("FROM debian:12\nCOPY a b /dst\n"),
        passes: ex("FROM debian:12\nCOPY a b /dst/\n"),
    },
    Rule {
        id: "DL3022",
        severity: Warning,
        message: "COPY --from should reference a previously defined FROM alias",
        why: "An unknown name is pulled as an image, which is rarely what was meant.",
        check: dl3022,
        fires: ex("FROM debian:12\nCOPY --from=build /app /app\n"),
        passes: ex("FROM debian:12 AS build\nFROM debian:12\nCOPY --from=build /app /app\n"),
    },
    Rule {
        id: "DL3023",
        severity: Error,
        message: "COPY --from cannot reference its own FROM alias",
        why: "A stage cannot copy from itself; the build fails.",
        check: dl3023,
        fires: ex("FROM debian:12 AS app\nCOPY --from=app /a /b\n"),
        passes: ex("FROM debian:12 AS build\nFROM debian:12 AS app\nCOPY --from=build /a /b\n"),
    },
    Rule {
        id: "DL3024",
        severity: Error,
        message: "FROM aliases (stage names) must be unique",
        why: "Duplicate stage names make --from and --target ambiguous.",
        check: dl3024,
        fires: ex("FROM debian:12 AS a\nFROM debian:12 AS a\n"),
        passes: ex("FROM debian:12 AS a\nFROM debian:12 AS b\n"),
    },
    Rule {
        id: "DL3025",
        severity: Warning,
        message: "Use arguments JSON notation for CMD and ENTRYPOINT arguments",
        why: "The shell form wraps the process in `sh -c`, which does not forward signals.",
        check: dl3025,
        fires: ex("FROM debian:12\nCMD nginx -g 'daemon off;'\n"),
        passes: ex("FROM debian:12\nCMD [\"nginx\", \"-g\", \"daemon off;\"]\n"),
    },
    Rule {
        id: "DL3026",
        severity: Error,
        message: "Use only an allowed registry in the FROM image",
        why: "Images from registries outside the trusted list bypass your supply-chain controls.",
        check: dl3026,
        fires: Example {
            dockerfile: "FROM quay.io/org/app:1.0\n",
            config: "trustedRegistries: [docker.io]\n",
            context: (false, false, false),
        },
        passes: Example {
            dockerfile: "FROM debian:12 AS a\nFROM localhost:5000/app:1.0\nFROM a\n",
            config: "trustedRegistries: [docker.io, 'localhost:5000']\n",
            context: (false, false, false),
        },
    },
    Rule {
        id: "DL3027",
        severity: Warning,
        message: "Do not use apt as it is meant to be an end-user tool, use apt-get or apt-cache instead",
        why: "apt's command line is not stable for scripts.",
        check: dl3027,
        fires: ex("FROM debian:12\nRUN apt install -y curl\n"),
        passes: ex("FROM debian:12\nRUN apt-get install -y curl=7.88.1-10\n"),
    },
    Rule {
        id: "DL3028",
        severity: Warning,
        message: "Pin versions in gem install. Instead of `gem install <gem>` use `gem install <gem>:<version>`",
        why: "Unpinned gems change between builds.",
        check: dl3028,
        fires: ex("FROM ruby:3.3\nRUN gem install bundler\n"),
        passes: ex("FROM ruby:3.3\nRUN gem install bundler:2.5.22 && gem install rake -v 13.2.1\n"),
    },
    Rule {
        id: "DL3029",
        severity: Warning,
        message: "Do not use --platform flag with FROM",
        why: "A fixed platform breaks multi-arch builds; use $BUILDPLATFORM or $TARGETPLATFORM.",
        check: dl3029,
        fires: ex("FROM --platform=linux/amd64 debian:12\n"),
        passes: ex("FROM --platform=$BUILDPLATFORM debian:12\n"),
    },
    Rule {
        id: "DL3030",
        severity: Warning,
        message: "Use the -y switch to avoid manual input `yum install -y <package>`",
        why: "Without -y yum waits for an answer the build never gives.",
        check: dl3030,
        fires: ex("FROM centos:7\nRUN yum install httpd-2.4.6 && yum clean all\n"),
        passes: ex("FROM centos:7\nRUN yum install -y httpd-2.4.6 && yum clean all\n"),
    },
    Rule {
        id: "DL3032",
        severity: Warning,
        message: "`yum clean all` missing after yum command",
        why: "The yum cache otherwise stays in the layer.",
        check: dl3032,
        fires: ex("FROM centos:7\nRUN yum install -y httpd-2.4.6\n"),
        passes: ex("FROM centos:7\nRUN yum install -y httpd-2.4.6 && yum clean all\n"),
    },
    Rule {
        id: "DL3033",
        severity: Warning,
        message: "Specify version with `yum install -y <package>-<version>`",
        why: "Unpinned packages change between builds.",
        check: dl3033,
        fires: ex("FROM centos:7\nRUN yum install -y httpd && yum clean all\n"),
        passes: ex("FROM centos:7\nRUN yum install -y httpd-2.4.6 && yum clean all\n"),
    },
    Rule {
        id: "DL3034",
        severity: Warning,
        message: "Non-interactive switch missing from zypper command: `zypper install -y`",
        why: "Without -n/-y zypper waits for an answer the build never gives.",
        check: dl3034,
        fires: ex("FROM opensuse/leap:15.6\nRUN zypper install httpd=2.4 && zypper clean\n"),
        passes: ex("FROM opensuse/leap:15.6\nRUN zypper -n install httpd=2.4 && zypper clean\n"),
    },
    Rule {
        id: "DL3035",
        severity: Warning,
        message: "Do not use `zypper dist-upgrade`",
        why: "A distribution upgrade in a build is unreproducible; pick a newer base image.",
        check: dl3035,
        fires: ex("FROM opensuse/leap:15.6\nRUN zypper dup\n"),
        passes: ex("FROM opensuse/leap:15.6\nRUN zypper -n install httpd=2.4 && zypper clean\n"),
    },
    Rule {
        id: "DL3036",
        severity: Warning,
        message: "`zypper clean` missing after zypper use",
        why: "The zypper cache otherwise stays in the layer.",
        check: dl3036,
        fires: ex("FROM opensuse/leap:15.6\nRUN zypper -n install httpd=2.4\n"),
        passes: ex("FROM opensuse/leap:15.6\nRUN zypper -n install httpd=2.4 && zypper cc\n"),
    },
    Rule {
        id: "DL3037",
        severity: Warning,
        message: "Specify version with `zypper install -y <package>=<version>`",
        why: "Unpinned packages change between builds.",
        check: dl3037,
        fires: ex("FROM opensuse/leap:15.6\nRUN zypper -n install httpd && zypper clean\n"),
        passes: ex("FROM opensuse/leap:15.6\nRUN zypper -n install 'httpd>=2.4' && zypper clean\n"),
    },
    Rule {
        id: "DL3038",
        severity: Warning,
        message: "Use the -y switch to avoid manual input `dnf install -y <package>`",
        why: "Without -y dnf waits for an answer the build never gives.",
        check: dl3038,
        fires: ex("FROM fedora:41\nRUN dnf install httpd-2.4.62 && dnf clean all\n"),
        passes: ex("FROM fedora:41\nRUN dnf install -y httpd-2.4.62 && dnf clean all\n"),
    },
    Rule {
        id: "DL3040",
        severity: Warning,
        message: "`dnf clean all` missing after dnf command",
        why: "The dnf cache otherwise stays in the layer.",
        check: dl3040,
        fires: ex("FROM fedora:41\nRUN dnf install -y httpd-2.4.62\n"),
        passes: ex("FROM fedora:41\nRUN dnf install -y httpd-2.4.62 && dnf clean all\n"),
    },
    Rule {
        id: "DL3041",
        severity: Warning,
        message: "Specify version with `dnf install -y <package>-<version>`",
        why: "Unpinned packages change between builds.",
        check: dl3041,
        fires: ex("FROM fedora:41\nRUN dnf install -y httpd && dnf clean all\n"),
        passes: ex("FROM fedora:41\nRUN dnf install -y httpd-2.4.62 && dnf clean all\n"),
    },
    Rule {
        id: "DL3042",
        severity: Warning,
        message: "Avoid use of cache directory with pip. Use `pip install --no-cache-dir <package>`",
        why: "pip's download cache is useless in an image and adds to its size.",
        check: dl3042,
        fires: ex("FROM python:3.12\nRUN pip install requests==2.32.3\n"),
        passes: ex("FROM python:3.12\nENV PIP_NO_CACHE_DIR=1\nRUN pip install requests==2.32.3\n"),
    },
    Rule {
        id: "DL3043",
        severity: Error,
        message: "`ONBUILD`, `FROM` or `MAINTAINER` triggered from within `ONBUILD` instruction",
        why: "The builder forbids these inside ONBUILD.",
        check: dl3043,
        fires: ex("FROM debian:12\nONBUILD FROM alpine:3.20\n"),
        passes: ex("FROM debian:12\nONBUILD COPY . /app/\n"),
    },
    Rule {
        id: "DL3044",
        severity: Error,
        message: "Do not refer to an environment variable within the same `ENV` statement where it is defined",
        why: "The reference sees the old value, not the one set on the same line.",
        check: dl3044,
        fires: ex("FROM debian:12\nENV A=/opt B=$A/bin\n"),
        passes: ex("FROM debian:12\nENV A=/opt\nENV B=$A/bin\n"),
    },
    Rule {
        id: "DL3045",
        severity: Warning,
        message: "`COPY` to a relative destination without `WORKDIR` set",
        why: "The destination then depends on the base image's WORKDIR.",
        check: dl3045,
        fires: ex("FROM debian:12\nCOPY app.py app/\n"),
        passes: ex("FROM debian:12\nWORKDIR /srv\nCOPY app.py app/\n"),
    },
    Rule {
        id: "DL3046",
        severity: Warning,
        message: "`useradd` without flag `-l` and high UID will result in excessively large Image",
        why: "useradd fills /var/log/lastlog sparsely up to the UID, which layers store in full.",
        check: dl3046,
        fires: ex("FROM debian:12\nRUN useradd -u 123456 app\n"),
        passes: ex("FROM debian:12\nRUN useradd -l -u 123456 app\n"),
    },
    Rule {
        id: "DL3047",
        severity: Info,
        message: "Avoid use of wget without progress bar. Use `wget --progress=dot:giga <url>`. Or consider using `-q` or `-nv` (shorthands for `--quiet` or `--no-verbose`)",
        why: "wget's default progress bar floods build logs.",
        check: dl3047,
        fires: ex("FROM debian:12\nRUN wget https://example.com/a.tgz\n"),
        passes: ex("FROM debian:12\nRUN wget -nv https://example.com/a.tgz\n"),
    },
    Rule {
        id: "DL3048",
        severity: Style,
        message: "Invalid label key",
        why: "Label keys should be lower-case reverse-DNS names outside the reserved namespaces.",
        check: dl3048,
        fires: ex("FROM debian:12\nLABEL Maintainer=me com.docker.x=1\n"),
        passes: ex("FROM debian:12\nLABEL org.opencontainers.image.title=app\n"),
    },
    Rule {
        id: "DL3049",
        severity: Info,
        message: "Label is missing",
        why: "The label schema in the config requires it on the final image.",
        check: dl3049,
        fires: Example {
            dockerfile: "FROM debian:12\nLABEL title=app\n",
            config: "label-schema:\n  version: semver\n  vcs-url: url\n  vcs-ref: hash\n  build-date: rfc3339\n  maintainer: email\n  title: text\n",
            context: (false, false, false),
        },
        passes: Example {
            dockerfile: "FROM debian:12\nLABEL version=1.2.3-rc.1 vcs-url=https://example.com/r.git vcs-ref=0a1b2c3 build-date=2024-05-01T10:00:00Z maintainer=ops@example.com title=app\n",
            config: "label-schema:\n  version: semver\n  vcs-url: url\n  vcs-ref: hash\n  build-date: rfc3339\n  maintainer: email\n  title: text\n",
            context: (false, false, false),
        },
    },
    Rule {
        id: "DL3050",
        severity: Info,
        message: "Superfluous label(s) present",
        why: "With strict-labels only labels from the schema are allowed.",
        check: dl3050,
        fires: Example {
            dockerfile: "FROM debian:12\nLABEL title=app other=x\n",
            config: "label-schema: {title: text}\nstrict-labels: true\n",
            context: (false, false, false),
        },
        passes: Example {
            dockerfile: "FROM debian:12\nLABEL title=app\n",
            config: "label-schema: {title: text}\nstrict-labels: true\n",
            context: (false, false, false),
        },
    },
    Rule {
        id: "DL3051",
        severity: Warning,
        message: "Label is empty",
        why: "A schema label with no value carries no information.",
        check: dl3051,
        fires: Example {
            dockerfile: "FROM debian:12\nLABEL title=\"\"\n",
            config: "label-schema: {title: text}\n",
            context: (false, false, false),
        },
        passes: Example {
            dockerfile: "FROM debian:12\nLABEL title=app\n",
            config: "label-schema: {title: text}\n",
            context: (false, false, false),
        },
    },
    Rule {
        id: "DL3052",
        severity: Warning,
        message: "Label is not a valid URL",
        why: "Tools that read the label expect a URL.",
        check: dl3052,
        fires: Example {
            dockerfile: "FROM debian:12\nLABEL vcs-url=not-a-url\n",
            config: "label-schema: {vcs-url: url}\n",
            context: (false, false, false),
        },
        passes: Example {
            dockerfile: "FROM debian:12\nLABEL vcs-url=https://example.com/r.git\n",
            config: "label-schema: {vcs-url: url}\n",
            context: (false, false, false),
        },
    },
    Rule {
        id: "DL3053",
        severity: Warning,
        message: "Label is not a valid time format - must conform to RFC3339",
        why: "Tools that read the label expect an RFC 3339 timestamp.",
        check: dl3053,
        fires: Example {
            dockerfile: "FROM debian:12\nLABEL build-date=yesterday\n",
            config: "label-schema: {build-date: rfc3339}\n",
            context: (false, false, false),
        },
        passes: Example {
            dockerfile: "FROM debian:12\nLABEL build-date=2024-05-01T10:00:00+02:00\n",
            config: "label-schema: {build-date: rfc3339}\n",
            context: (false, false, false),
        },
    },
    Rule {
        id: "DL3054",
        severity: Warning,
        message: "Label is not a valid SPDX identifier",
        why: "Tools that read the label expect an SPDX license identifier such as `MIT` or `Apache-2.0`.",
        check: dl3054,
        fires: Example {
            dockerfile: "FROM debian:12\nLABEL license=\"Apache 2\"\n",
            config: "label-schema: {license: spdx}\n",
            context: (false, false, false),
        },
        passes: Example {
            dockerfile: "FROM debian:12\nLABEL license=Apache-2.0\n",
            config: "label-schema: {license: spdx}\n",
            context: (false, false, false),
        },
    },
    Rule {
        id: "DL3055",
        severity: Warning,
        message: "Label is not a valid git hash",
        why: "Tools that read the label expect a commit hash.",
        check: dl3055,
        fires: Example {
            dockerfile: "FROM debian:12\nLABEL vcs-ref=main\n",
            config: "label-schema: {vcs-ref: hash}\n",
            context: (false, false, false),
        },
        passes: Example {
            dockerfile: "FROM debian:12\nLABEL vcs-ref=0a1b2c3d4e5f60718293a4b5c6d7e8f901234567\n",
            config: "label-schema: {vcs-ref: hash}\n",
            context: (false, false, false),
        },
    },
    Rule {
        id: "DL3056",
        severity: Warning,
        message: "Label does not conform to semantic versioning",
        why: "Tools that read the label expect a semantic version.",
        check: dl3056,
        fires: Example {
            dockerfile: "FROM debian:12\nLABEL version=v1.2\n",
            config: "label-schema: {version: semver}\n",
            context: (false, false, false),
        },
        passes: Example {
            dockerfile: "FROM debian:12\nLABEL version=1.2.0+build.5\n",
            config: "label-schema: {version: semver}\n",
            context: (false, false, false),
        },
    },
    Rule {
        id: "DL3057",
        severity: Info,
        message: "`HEALTHCHECK` instruction missing",
        why: "Without a health check the engine cannot tell a hung service from a healthy one.",
        check: dl3057,
        fires: ex("FROM debian:12\nCMD [\"app\"]\n"),
        passes: ex("FROM debian:12\nHEALTHCHECK CMD [\"app\", \"--check\"]\n"),
    },
    Rule {
        id: "DL3058",
        severity: Warning,
        message: "Label is not a valid email format - must conform to RFC5322",
        why: "Tools that read the label expect an email address.",
        check: dl3058,
        fires: Example {
            dockerfile: "FROM debian:12\nLABEL maintainer=ops-at-example\n",
            config: "label-schema: {maintainer: email}\n",
            context: (false, false, false),
        },
        passes: Example {
            dockerfile: "FROM debian:12\nLABEL maintainer=ops@example.com\n",
            config: "label-schema: {maintainer: email}\n",
            context: (false, false, false),
        },
    },
    Rule {
        id: "DL3059",
        severity: Info,
        message: "Multiple consecutive `RUN` instructions. Consider consolidation",
        why: "Each RUN adds a layer; related commands belong together.",
        check: dl3059,
        fires: ex("FROM debian:12\nRUN mkdir /a\nRUN mkdir /b\n"),
        passes: ex("FROM debian:12\nRUN mkdir /a /b\n"),
    },
    Rule {
        id: "DL3060",
        severity: Info,
        message: "`yarn cache clean` missing after `yarn install` was run",
        why: "The yarn cache otherwise stays in the layer.",
        check: dl3060,
        fires: ex("FROM node:22\nRUN yarn install\n"),
        passes: ex("FROM node:22\nRUN yarn install && yarn cache clean\n"),
    },
    Rule {
        id: "DL3061",
        severity: Error,
        message: "Invalid instruction order. Dockerfile must begin with `FROM`, `ARG` or comment",
        why: "The builder rejects instructions before the first stage.",
        check: dl3061,
        fires: ex("LABEL a=b\nFROM debian:12\n"),
        passes: ex("ARG V=12\nFROM debian:${V}\n"),
    },
    Rule {
        id: "DL3062",
        severity: Warning,
        message: "Pin versions in go install. Instead of `go install <package>` use `go install <package>@<version>`",
        why: "Unpinned or @latest tools change between builds.",
        check: dl3062,
        fires: ex("FROM golang:1.23\nRUN go install golang.org/x/tools/gopls@latest && go get github.com/a/b\n"),
        passes: ex("FROM golang:1.23\nRUN go install golang.org/x/tools/gopls@v0.16.2 && go get ./... && go run ./cmd/x\n"),
    },
    Rule {
        id: "DL3066",
        severity: Info,
        message: "Non-numeric user-id may not be resolvable by host system",
        why: "A user name means nothing outside the image: the engine, volumes and policies that require non-root see only numbers.",
        check: dl3066,
        fires: ex("FROM debian:12\nRUN useradd -l -u 10001 app\nUSER app\n"),
        passes: ex("ARG APP_UID=10001\nFROM debian:12\nUSER 10001:10001\nUSER ${APP_UID}\n"),
    },
    Rule {
        id: "DL3067",
        severity: Warning,
        message: "Do not copy an entire filesystem from another stage",
        why: "`COPY --from=stage / /` brings every file of that stage, package caches and build tools included.",
        check: dl3067,
        fires: ex("FROM debian:12 AS build\nFROM scratch\nCOPY --from=build / /\n"),
        passes: ex("FROM debian:12 AS build\nFROM scratch\nCOPY --from=build /app /app\nCOPY --from=build / /rootfs/\n"),
    },
    Rule {
        id: "DL4000",
        severity: Error,
        message: "MAINTAINER is deprecated",
        why: "Use `LABEL org.opencontainers.image.authors=...` instead.",
        check: dl4000,
        fires: ex("FROM debian:12\nMAINTAINER me@example.com\n"),
        passes: ex("FROM debian:12\nLABEL org.opencontainers.image.authors=me@example.com\n"),
    },
    Rule {
        id: "DL4001",
        severity: Warning,
        message: "Either use Wget or Curl but not both",
        why: "Two download tools means two sets of dependencies for the same job.",
        check: dl4001,
        fires: ex("FROM debian:12\nRUN wget -q https://a/x\nRUN curl -fsSL https://a/y\n"),
        passes: ex("FROM debian:12\nRUN curl -fsSL https://a/x && curl -fsSL https://a/y\n"),
    },
    Rule {
        id: "DL4003",
        severity: Warning,
        message: "Multiple `CMD` instructions found. If you list more than one `CMD` then only the last `CMD` will take effect",
        why: "Only the last CMD counts; the others mislead readers.",
        check: dl4003,
        fires: ex("FROM debian:12\nCMD [\"a\"]\nCMD [\"b\"]\n"),
        passes: ex("FROM debian:12 AS a\nCMD [\"a\"]\nFROM debian:12\nCMD [\"b\"]\n"),
    },
    Rule {
        id: "DL4004",
        severity: Error,
        message: "Multiple `ENTRYPOINT` instructions found. If you list more than one `ENTRYPOINT` then only the last `ENTRYPOINT` will take effect",
        why: "Only the last ENTRYPOINT counts; the others mislead readers.",
        check: dl4004,
        fires: ex("FROM debian:12\nENTRYPOINT [\"a\"]\nENTRYPOINT [\"b\"]\n"),
        passes: ex("FROM debian:12\nENTRYPOINT [\"a\"]\n"),
    },
    Rule {
        id: "DL4005",
        severity: Warning,
        message: "Use SHELL to change the default shell",
        why: "Replacing /bin/sh with a link changes every later RUN behind the reader's back.",
        check: dl4005,
        fires: ex("FROM debian:12\nRUN ln -sf /bin/bash /bin/sh\n"),
        passes: ex("FROM debian:12\nSHELL [\"/bin/bash\", \"-c\"]\n"),
    },
    Rule {
        id: "DL4006",
        severity: Warning,
        message: "Set the SHELL option -o pipefail before RUN with a pipe in it. If you are using /bin/sh in an alpine image or if your shell is symlinked to busybox then consider explicitly setting your SHELL to /bin/ash, or disable this check",
        why: "Without pipefail a failing first command in a pipe still passes the build.",
        check: dl4006,
        fires: ex("FROM debian:12\nRUN curl -fsSL https://a/x | tar -xz\n"),
        passes: ex("FROM debian:12\nSHELL [\"/bin/bash\", \"-o\", \"pipefail\", \"-c\"]\nRUN curl -fsSL https://a/x | tar -xz\n"),
    },
    Rule {
        id: "SC2016",
        severity: Info,
        message: "Expressions don't expand in single quotes, use double quotes for that",
        why: "`'$(cmd)'` and `'$VAR'` pass the text literally; the command or variable never runs.",
        check: sc2016,
        fires: ex("FROM debian:12\nRUN echo 'built on $(date)' > /build-info\n"),
        passes: ex("FROM debian:12\nRUN echo \"built on $(date)\" > /build-info && awk '{print $1}' /etc/hosts\n"),
    },
    Rule {
        id: "SC2086",
        severity: Info,
        message: "Double quote to prevent globbing and word splitting",
        why: "An unquoted variable with a space or `*` in its value becomes several words, so a path splits or globs.",
        check: sc2086,
        fires: ex("FROM debian:12\nRUN mkdir -p $HOME/.cache\n"),
        passes: ex("FROM debian:12\nARG DIR=/opt/app\nRUN mkdir -p \"$HOME/.cache\" $DIR && d=/srv; cp -r $d /backup\n"),
    },
    Rule {
        id: "SC2164",
        severity: Warning,
        message: "Use 'cd ... || exit' or 'cd ... || return' in case cd fails",
        why: "When cd fails the next commands run in the wrong directory (in a RUN, usually /).",
        check: sc2164,
        fires: ex("FROM debian:12\nWORKDIR /src\nRUN cd build; make\n"),
        passes: ex("FROM debian:12\nWORKDIR /src\nRUN cd build && make && (cd docs || exit 1; make)\n"),
    },
    Rule {
        id: "TUG001",
        severity: Warning,
        message: "Compiler toolchain runs in the final stage: use a multi-stage build",
        why: "Shipping the compiler and sources makes the image large and widens its attack surface.",
        check: tug001,
        fires: ex("FROM rust:1.83\nCOPY . /src/\nWORKDIR /src\nRUN cargo build --release\n"),
        passes: ex("FROM rust:1.83 AS build\nWORKDIR /src\nCOPY . .\nRUN cargo build --release\nFROM debian:12\nCOPY --from=build /src/target/release/app /app\n"),
    },
    Rule {
        id: "TUG002",
        severity: Warning,
        message: "Dependencies installed after copying the whole context",
        why: "Any source change invalidates the install layer; copy the manifests and install first.",
        check: tug002,
        fires: ex("FROM node:22\nWORKDIR /app\nCOPY . .\nRUN npm ci\n"),
        passes: ex("FROM node:22\nWORKDIR /app\nCOPY package.json package-lock.json ./\nRUN npm ci\nCOPY . .\n"),
    },
    Rule {
        id: "TUG003",
        severity: Warning,
        message: "Rust build without a dependency-caching layer",
        why: "Without a layer that builds only the dependencies, every source change recompiles all crates.",
        check: tug003,
        fires: ex("FROM rust:1.83 AS build\nWORKDIR /src\nCOPY . .\nRUN cargo build --release\n"),
        passes: ex("FROM rust:1.83 AS build\nWORKDIR /src\nCOPY Cargo.toml Cargo.lock ./\nRUN mkdir src && echo 'fn main() {}' > src/main.rs && cargo build --release\nCOPY . .\nRUN touch src/main.rs && cargo build --release\n"),
    },
    Rule {
        id: "TUG004",
        severity: Warning,
        message: "No .dockerignore beside a large build context",
        why: "Everything in the context is sent to the builder on each build, build output and VCS data included.",
        check: tug004,
        fires: Example {
            dockerfile: "FROM debian:12\nCOPY . /src/\n",
            config: "",
            context: (true, false, true),
        },
        passes: Example {
            dockerfile: "FROM debian:12\nCOPY . /src/\n",
            config: "",
            context: (true, true, true),
        },
    },
    Rule {
        id: "TUG005",
        severity: Error,
        message: "Secret in ENV or ARG",
        why: "ENV values and ARG defaults are stored in the image and its history; use `RUN --mount=type=secret`.",
        check: tug005,
        fires: ex("FROM debian:12\nENV GITHUB_TOKEN=ghp_abc123\n"),
        passes: ex("FROM debian:12\nARG NPM_TOKEN\nENV TOKEN_URL=https://auth.example.com\n"),
    },
    Rule {
        id: "TUG007",
        severity: Warning,
        message: "A `\\` ends the line before a here-document terminator",
        why: "In an unquoted here-document the shell joins the terminator to that line, so the here-document never ends where the Dockerfile shows it.",
        check: tug007,
        fires: ex("FROM debian:12\nRUN cat <<EOF > /etc/app.conf\nlisten 8080 \\\nEOF\n"),
        passes: ex("FROM debian:12\nRUN cat <<EOF > /etc/app.conf\nlisten 8080\nEOF\n"),
    },
    Rule {
        id: "TUG006",
        severity: Warning,
        message: "No non-root USER in the final stage",
        why: "Without USER the container runs as root.",
        check: tug006,
        fires: ex("FROM debian:12\nCMD [\"app\"]\n"),
        passes: ex("FROM debian:12 AS base\nUSER 10001\nFROM base\nCMD [\"app\"]\n"),
    },
];

// ---------- helpers ----------

fn cached(run: &Run, path_part: &str) -> bool {
    run.ins
        .cache_mount_targets()
        .iter()
        .any(|t| t.contains(path_part))
}

/// Hits each RUN once when any of its commands matches.
fn runs_where(ctx: &Ctx, hits: &mut Hits, pred: impl Fn(&Command) -> bool) {
    for run in &ctx.runs {
        if run.script.any(&pred) {
            hits.at(run.at);
        }
    }
}

/// Hits RUNs where a command matches `pred` and returns a detail.
fn runs_detail(ctx: &Ctx, hits: &mut Hits, pred: impl Fn(&Command) -> Option<String>) {
    for run in &ctx.runs {
        let details: Vec<String> = run.script.commands.iter().filter_map(&pred).collect();
        if !details.is_empty() {
            hits.with(run.at, details.join(", "));
        }
    }
}

const APT_VALUE_FLAGS: &[&str] = &[
    "-o",
    "-t",
    "-c",
    "--target-release",
    "--option",
    "--config-file",
];

fn apt_install(c: &Command) -> Option<Vec<&str>> {
    if !c.is("apt-get") {
        return None;
    }
    let pos = c.positional(APT_VALUE_FLAGS);
    (pos.first() == Some(&"install")).then(|| pos[1..].to_vec())
}

const APK_VALUE_FLAGS: &[&str] = &[
    "-t",
    "--virtual",
    "-X",
    "--repository",
    "-p",
    "--root",
    "--arch",
    "--repositories-file",
];

fn apk_add(c: &Command) -> Option<Vec<&str>> {
    if !c.is("apk") {
        return None;
    }
    let pos = c.positional(APK_VALUE_FLAGS);
    (pos.first() == Some(&"add")).then(|| pos[1..].to_vec())
}

const PIP_VALUE_FLAGS: &[&str] = &[
    "-r",
    "--requirement",
    "-c",
    "--constraint",
    "-e",
    "--editable",
    "-i",
    "--index-url",
    "--extra-index-url",
    "-f",
    "--find-links",
    "-t",
    "--target",
    "--prefix",
    "--root",
    "--trusted-host",
    "--platform",
    "--python-version",
    "--implementation",
    "--abi",
    "--src",
    "--upgrade-strategy",
    "--progress-bar",
    "--cache-dir",
    "--log",
    "--proxy",
    "--retries",
    "--timeout",
    "--exists-action",
    "--cert",
    "--client-cert",
    "--no-binary",
    "--only-binary",
];

/// `pip install ...` or `python -m pip install ...`: the arguments after `install`.
fn pip_install(c: &Command) -> Option<Vec<String>> {
    let prog = c.program();
    let args: &[String] = if prog.starts_with("pip") {
        &c.args
    } else if prog.starts_with("python")
        && c.args.len() >= 2
        && c.args[0] == "-m"
        && c.args[1].starts_with("pip")
    {
        &c.args[2..]
    } else {
        return None;
    };
    let sub = Command {
        name: "pip".into(),
        args: args.to_vec(),
        pipeline: c.pipeline,
        pipeline_len: c.pipeline_len,
        ..Command::default()
    };
    (sub.subcommand(PIP_VALUE_FLAGS) == Some("install")).then(|| args.to_vec())
}

fn sub_is(c: &Command, prog: &str, subs: &[&str], value_flags: &[&str]) -> bool {
    c.is(prog) && c.subcommand(value_flags).is_some_and(|s| subs.contains(&s))
}

fn rpm_install(c: &Command, prog: &str) -> Option<Vec<String>> {
    if !c.is(prog) {
        return None;
    }
    let pos = c.positional(&[
        "-c",
        "--config",
        "--setopt",
        "--installroot",
        "--releasever",
        "--enablerepo",
        "--disablerepo",
        "-x",
        "--exclude",
    ]);
    (pos.first() == Some(&"install")).then(|| pos[1..].iter().map(|s| s.to_string()).collect())
}

fn rpm_pinned(pkg: &str) -> bool {
    pkg.ends_with(".rpm")
        || pkg.contains("://")
        || pkg
            .char_indices()
            .any(|(i, ch)| ch == '-' && pkg[i + 1..].starts_with(|d: char| d.is_ascii_digit()))
}

fn is_var(s: &str) -> bool {
    s.starts_with('$')
}

fn stage_of<'a>(ctx: &'a Ctx, ins: &Instruction) -> Option<&'a Stage> {
    ins.stage.and_then(|s| ctx.stages.get(s))
}

fn is_alias(ctx: &Ctx, stage: &Stage) -> bool {
    ctx.parent(stage).is_some()
}

// ---------- checks ----------

fn dl1000(ctx: &Ctx, hits: &mut Hits) {
    for e in &ctx.parsed.errors {
        hits.pos(e.line, e.col, Some(e.message.clone()));
    }
}

fn dl3000(ctx: &Ctx, hits: &mut Hits) {
    for ins in &ctx.parsed.instructions {
        if let (Keyword::Workdir, Body::Text(path)) = (ins.keyword, &ins.body) {
            let windows = path.len() >= 2
                && path.as_bytes()[1] == b':'
                && path.as_bytes()[0].is_ascii_alphabetic();
            if !path.starts_with('/') && !is_var(path) && !windows {
                hits.with(ins, path.clone());
            }
        }
    }
}

fn dl3001(ctx: &Ctx, hits: &mut Hits) {
    const BAD: &[&str] = &[
        "ssh", "vim", "shutdown", "service", "ps", "free", "top", "kill", "mount", "ifconfig",
    ];
    runs_detail(ctx, hits, |c| {
        BAD.contains(&c.program()).then(|| c.program().to_string())
    });
}

fn is_root(user: &str) -> bool {
    let name = user.split(':').next().unwrap_or(user);
    name == "root" || name == "0"
}

fn dl3002(ctx: &Ctx, hits: &mut Hits) {
    let Some(last) = ctx.final_stage() else {
        return;
    };
    let user = ctx
        .stage_ins(last)
        .filter(|i| i.keyword == Keyword::User)
        .last();
    if let Some(ins) = user {
        if let Body::Text(u) = &ins.body {
            if is_root(u) {
                hits.at(ins);
            }
        }
    }
}

fn dl3066(ctx: &Ctx, hits: &mut Hits) {
    let mut args: HashSet<&str> = HashSet::new();
    for ins in &ctx.parsed.instructions {
        match (ins.keyword, &ins.body) {
            (Keyword::Arg, Body::Arg(a)) => args.extend(a.iter().map(|(k, _)| k.as_str())),
            (Keyword::User, Body::Text(u)) => {
                let uid = u.split(':').next().unwrap_or(u);
                // A build argument may hold a number; an ENV or unset variable is a name.
                let vars = unquoted_vars(uid);
                let from_args = !vars.is_empty() && vars.iter().all(|v| args.contains(v.as_str()));
                if !from_args && !uid.chars().all(|c| c.is_ascii_digit()) {
                    hits.with(ins, uid.to_string());
                }
            }
            _ => {}
        }
    }
}

fn dl3067(ctx: &Ctx, hits: &mut Hits) {
    for (ins, _) in copy_froms(ctx) {
        if let Body::Files { sources, dest } = &ins.body {
            if dest == "/" && sources.iter().any(|s| s == "/") {
                hits.at(ins);
            }
        }
    }
}

fn dl3003(ctx: &Ctx, hits: &mut Hits) {
    // hadolint leaves ONBUILD RUN out of this rule.
    for run in ctx.runs.iter().filter(|r| std::ptr::eq(r.ins, r.at)) {
        if run.script.any(|c| c.is("cd")) {
            hits.at(run.at);
        }
    }
}

fn dl3004(ctx: &Ctx, hits: &mut Hits) {
    runs_where(ctx, hits, |c| c.is("sudo"));
}

fn from_images<'a>(ctx: &'a Ctx) -> impl Iterator<Item = (&'a Stage, ImageRef)> + 'a {
    ctx.stages.iter().filter_map(move |s| {
        if !s.image_resolved || s.image.is_empty() || s.image == "scratch" || is_alias(ctx, s) {
            return None;
        }
        // hadolint does not look through ARGs in FROM; --strict does.
        let written = match &ctx.ins(s.from).body {
            Body::From { image, .. } => image.as_str(),
            _ => "",
        };
        if written.contains('$') && !ctx.config.strict {
            return None;
        }
        Some((s, ImageRef::parse(&s.image)))
    })
}

fn dl3006(ctx: &Ctx, hits: &mut Hits) {
    for (s, r) in from_images(ctx) {
        if r.tag.is_none() && r.digest.is_none() {
            hits.with(ctx.ins(s.from), s.image.clone());
        }
    }
}

fn dl3007(ctx: &Ctx, hits: &mut Hits) {
    for (s, r) in from_images(ctx) {
        if r.tag.as_deref() == Some("latest") && r.digest.is_none() {
            hits.with(ctx.ins(s.from), s.image.clone());
        }
    }
    // A FROM that from_images leaves out for its variables can still say
    // `:latest` itself (`busybox-${ARCH}:latest`); hadolint reads the tag as written.
    for s in &ctx.stages {
        let ins = ctx.ins(s.from);
        let Body::From { image, .. } = &ins.body else {
            continue;
        };
        if !image.contains('$') || (ctx.config.strict && s.image_resolved) || is_alias(ctx, s) {
            continue;
        }
        let r = ImageRef::parse(image);
        if r.tag.as_deref() == Some("latest") && r.digest.is_none() {
            hits.with(ins, image.clone());
        }
    }
}

fn dl3008(ctx: &Ctx, hits: &mut Hits) {
    runs_detail(ctx, hits, |c| {
        let pkgs: Vec<&str> = apt_install(c)?
            .into_iter()
            .filter(|p| !p.contains('=') && !p.ends_with(".deb") && !is_var(p))
            .collect();
        (!pkgs.is_empty()).then(|| pkgs.join(" "))
    });
}

fn dl3009(ctx: &Ctx, hits: &mut Hits) {
    for run in &ctx.runs {
        if !ctx.ships(run.at.stage) || cached(run, "/var/lib/apt") {
            continue;
        }
        let updates = run.script.any(|c| {
            (c.is("apt-get") || c.is("apt")) && c.subcommand(APT_VALUE_FLAGS) == Some("update")
        });
        // hadolint also takes any `rm -rf` as the clean-up; --strict wants the lists.
        let cleans = run.script.any(|c| {
            c.is("rm")
                && (c.args.iter().any(|a| a.starts_with("/var/lib/apt/lists"))
                    || !ctx.config.strict && c.args.iter().any(|a| a == "-rf"))
        });
        if updates && !cleans {
            hits.at(run.at);
        }
    }
}

const ARCHIVES: &[&str] = &[
    ".tar",
    ".tar.gz",
    ".tgz",
    ".tar.bz2",
    ".tbz2",
    ".tbz",
    ".tar.xz",
    ".txz",
    ".tar.zst",
    ".tzst",
    ".tar.lz",
    ".tar.lzma",
    ".tlz",
];

fn is_archive(p: &str) -> bool {
    let l = p.to_ascii_lowercase();
    ARCHIVES.iter().any(|e| l.ends_with(e))
}

fn basename(p: &str) -> &str {
    p.trim_end_matches('/').rsplit('/').next().unwrap_or(p)
}

fn dl3010(ctx: &Ctx, hits: &mut Hits) {
    for stage in &ctx.stages {
        let mut copied: HashSet<&str> = HashSet::new();
        for idx in &stage.instructions {
            let ins = ctx.ins(*idx);
            match (&ins.body, ins.keyword) {
                (Body::Files { sources, .. }, Keyword::Copy) if ins.flag("from").is_none() => {
                    copied.extend(
                        sources
                            .iter()
                            .filter(|s| is_archive(s))
                            .map(|s| basename(s)),
                    );
                }
                (_, Keyword::Run) if !copied.is_empty() => {
                    if let Some(run) = ctx.runs.iter().find(|r| r.index == *idx) {
                        let extracts = run.script.any(|c| {
                            c.is("tar")
                                && (c.has_flag("-x")
                                    || c.has_flag("--extract")
                                    || c.args.first().is_some_and(|a| {
                                        !a.starts_with('-')
                                            && a.contains('x')
                                            && a.chars().all(|ch| ch.is_ascii_alphabetic())
                                    }))
                                && c.args.iter().any(|a| copied.contains(basename(a)))
                        });
                        if extracts {
                            hits.at(ins);
                        }
                    }
                }
                _ => {}
            }
        }
    }
}

fn dl3011(ctx: &Ctx, hits: &mut Hits) {
    for ins in &ctx.parsed.instructions {
        let (Keyword::Expose, Body::Words(ports)) = (ins.keyword, &ins.body) else {
            continue;
        };
        for p in ports {
            if p.contains('$') {
                continue;
            }
            let num = p.split('/').next().unwrap_or(p);
            let ok = num
                .split('-')
                .all(|n| n.parse::<u32>().is_ok_and(|v| v <= 65535));
            if !ok {
                hits.with(ins, p.clone());
            }
        }
    }
}

fn nth_in_stage(ctx: &Ctx, hits: &mut Hits, kw: Keyword) {
    for stage in &ctx.stages {
        for ins in ctx.stage_ins(stage).filter(|i| i.keyword == kw).skip(1) {
            hits.at(ins);
        }
    }
}

fn dl3012(ctx: &Ctx, hits: &mut Hits) {
    nth_in_stage(ctx, hits, Keyword::Healthcheck);
}

fn pip_pinned(p: &str) -> bool {
    ["==", ">=", "<=", "~=", "!=", "<", ">", "@"]
        .iter()
        .any(|op| p.contains(op))
        || p.starts_with('.')
        || p.starts_with('/')
        || p.contains("://")
        || p.ends_with(".whl")
        || p.ends_with(".tar.gz")
        || p.ends_with(".zip")
        || is_var(p)
}

fn dl3013(ctx: &Ctx, hits: &mut Hits) {
    runs_detail(ctx, hits, |c| {
        let args = pip_install(c)?;
        let sub = Command {
            name: "pip".into(),
            args,
            pipeline: 0,
            pipeline_len: 1,
            ..Command::default()
        };
        let pkgs: Vec<&str> = sub
            .positional(PIP_VALUE_FLAGS)
            .into_iter()
            .skip(1)
            .filter(|p| !pip_pinned(p))
            .collect();
        (!pkgs.is_empty()).then(|| pkgs.join(" "))
    });
}

fn dl3014(ctx: &Ctx, hits: &mut Hits) {
    runs_where(ctx, hits, |c| {
        apt_install(c).is_some()
            && !c.has_any_flag(&["-y", "--yes", "--assume-yes", "-qq"])
            && !c.args.iter().any(|a| a == "-q=2")
    });
}

fn dl3015(ctx: &Ctx, hits: &mut Hits) {
    runs_where(ctx, hits, |c| {
        apt_install(c).is_some()
            && !c.has_flag("--no-install-recommends")
            && !c.args.iter().any(|a| {
                a.contains("Install-Recommends=false") || a.contains("Install-Recommends=0")
            })
    });
}

fn dl3016(ctx: &Ctx, hits: &mut Hits) {
    runs_detail(ctx, hits, |c| {
        if !c.is("npm") {
            return None;
        }
        let pos = c.positional(&["--prefix", "--registry", "--cache", "-w", "--workspace"]);
        if !matches!(pos.first(), Some(&"install") | Some(&"i") | Some(&"add")) {
            return None;
        }
        let pkgs: Vec<&str> = pos[1..]
            .iter()
            .copied()
            .filter(|p| {
                let versioned = p.char_indices().skip(1).any(|(_, ch)| ch == '@');
                let local = p.starts_with('.')
                    || p.starts_with('/')
                    || p.starts_with('~')
                    || p.contains("://")
                    || p.starts_with("git")
                    || p.ends_with(".tgz")
                    || p.ends_with(".tar.gz")
                    || (p.contains('/') && !p.starts_with('@'));
                !versioned && !local && !is_var(p)
            })
            .collect();
        (!pkgs.is_empty()).then(|| pkgs.join(" "))
    });
}

fn dl3018(ctx: &Ctx, hits: &mut Hits) {
    runs_detail(ctx, hits, |c| {
        let pkgs: Vec<&str> = apk_add(c)?
            .into_iter()
            .filter(|p| !p.contains('=') && !p.ends_with(".apk") && !is_var(p))
            .collect();
        (!pkgs.is_empty()).then(|| pkgs.join(" "))
    });
}

fn dl3019(ctx: &Ctx, hits: &mut Hits) {
    for run in &ctx.runs {
        if cached(run, "/var/cache/apk") || cached(run, "/etc/apk/cache") {
            continue;
        }
        if run
            .script
            .any(|c| apk_add(c).is_some() && !c.has_flag("--no-cache"))
        {
            hits.at(run.at);
        }
    }
}

fn is_url(s: &str) -> bool {
    s.contains("://") || s.starts_with("git@")
}

fn dl3020(ctx: &Ctx, hits: &mut Hits) {
    for ins in &ctx.parsed.instructions {
        if let (Keyword::Add, Body::Files { sources, .. }) = (ins.keyword, &ins.body) {
            let files: Vec<&str> = sources
                .iter()
                .map(String::as_str)
                .filter(|s| !is_url(s) && !is_archive(s) && !s.starts_with("<<") && !is_var(s))
                .collect();
            if !files.is_empty() {
                hits.with(ins, files.join(" "));
            }
        }
    }
}

fn dl3021(ctx: &Ctx, hits: &mut Hits) {
    for ins in &ctx.parsed.instructions {
        if let (Keyword::Copy, Body::Files { sources, dest }) = (ins.keyword, &ins.body) {
            if sources.len() >= 2 && !dest.ends_with('/') && !is_var(dest) {
                hits.at(ins);
            }
        }
    }
}

fn copy_froms<'a>(ctx: &'a Ctx) -> impl Iterator<Item = (&'a Instruction, &'a str)> + 'a {
    ctx.parsed
        .instructions
        .iter()
        .filter(|i| i.keyword == Keyword::Copy)
        .filter_map(|i| i.flag_value("from").map(|f| (i, f)))
}

fn dl3022(ctx: &Ctx, hits: &mut Hits) {
    for (ins, from) in copy_froms(ctx) {
        let Some(cur) = ins.stage else { continue };
        if is_var(from) || from.contains(':') || from.contains('/') || from.contains('.') {
            continue;
        }
        let known = ctx.stages[..cur].iter().any(|s| {
            s.alias
                .as_deref()
                .is_some_and(|a| a.eq_ignore_ascii_case(from))
        }) || from.parse::<usize>().is_ok_and(|n| n < cur);
        let own = ctx.stages[cur]
            .alias
            .as_deref()
            .is_some_and(|a| a.eq_ignore_ascii_case(from));
        if !known && !own {
            hits.with(ins, from.to_string());
        }
    }
}

fn dl3023(ctx: &Ctx, hits: &mut Hits) {
    for (ins, from) in copy_froms(ctx) {
        if let Some(stage) = stage_of(ctx, ins) {
            if stage
                .alias
                .as_deref()
                .is_some_and(|a| a.eq_ignore_ascii_case(from))
            {
                hits.at(ins);
            }
        }
    }
}

fn dl3024(ctx: &Ctx, hits: &mut Hits) {
    let mut seen = HashSet::new();
    for s in &ctx.stages {
        if let Some(a) = &s.alias {
            if !seen.insert(a.to_ascii_lowercase()) {
                hits.with(ctx.ins(s.from), a.clone());
            }
        }
    }
}

fn dl3025(ctx: &Ctx, hits: &mut Hits) {
    for ins in &ctx.parsed.instructions {
        // hadolint also wants the exec form for HEALTHCHECK CMD.
        if (matches!(ins.keyword, Keyword::Cmd | Keyword::Entrypoint)
            && matches!(ins.body, Body::Command(CommandForm::Shell(_))))
            || matches!(ins.body, Body::Healthcheck(Some(CommandForm::Shell(_))))
        {
            hits.at(ins);
        }
    }
}

fn registry_allowed(registry: &str, allowed: &[String]) -> bool {
    allowed.iter().any(|a| {
        let a = a.trim();
        a == registry
            || (registry == "docker.io"
                && (a == "hub.docker.com" || a == "index.docker.io" || a == "registry-1.docker.io"))
            || a.strip_prefix("*.")
                .is_some_and(|suffix| registry.ends_with(&format!(".{suffix}")))
            || a == "*"
    })
}

fn dl3026(ctx: &Ctx, hits: &mut Hits) {
    let allowed = &ctx.config.trusted_registries;
    if allowed.is_empty() {
        return;
    }
    for (s, r) in from_images(ctx) {
        let registry = r.registry.unwrap_or_else(|| "docker.io".to_string());
        if !registry_allowed(&registry, allowed) {
            hits.with(ctx.ins(s.from), registry);
        }
    }
}

fn dl3027(ctx: &Ctx, hits: &mut Hits) {
    runs_where(ctx, hits, |c| c.is("apt"));
}

fn dl3028(ctx: &Ctx, hits: &mut Hits) {
    runs_detail(ctx, hits, |c| {
        if !c.is("gem") || c.has_any_flag(&["-v", "--version"]) {
            return None;
        }
        let pos = c.positional(&[
            "-v",
            "--version",
            "-i",
            "--install-dir",
            "-n",
            "--bindir",
            "-s",
            "--source",
            "-P",
            "--trust-policy",
            "--platform",
        ]);
        if !matches!(pos.first(), Some(&"install") | Some(&"i")) {
            return None;
        }
        let gems: Vec<&str> = pos[1..]
            .iter()
            .copied()
            .filter(|g| !g.contains(':') && !g.ends_with(".gem") && !is_var(g))
            .collect();
        (!gems.is_empty()).then(|| gems.join(" "))
    });
}

fn dl3029(ctx: &Ctx, hits: &mut Hits) {
    for ins in &ctx.parsed.instructions {
        if ins.keyword == Keyword::From {
            if let Some(p) = ins.flag_value("platform") {
                if !is_var(p) {
                    hits.with(ins, p.to_string());
                }
            }
        }
    }
}

fn dl3030(ctx: &Ctx, hits: &mut Hits) {
    runs_where(ctx, hits, |c| {
        sub_is(
            c,
            "yum",
            &[
                "install",
                "groupinstall",
                "localinstall",
                "update",
                "upgrade",
                "reinstall",
            ],
            &[],
        ) && !c.has_any_flag(&["-y", "--assumeyes"])
    });
}

fn clean_missing(
    ctx: &Ctx,
    hits: &mut Hits,
    tools: &[&str],
    uses: &[&str],
    cache: &str,
    clean: &dyn Fn(&Command) -> bool,
) {
    for run in &ctx.runs {
        if cached(run, cache) {
            continue;
        }
        let used = run
            .script
            .any(|c| tools.iter().any(|t| sub_is(c, t, uses, &[])));
        if used && !run.script.any(clean) {
            hits.at(run.at);
        }
    }
}

fn dl3032(ctx: &Ctx, hits: &mut Hits) {
    clean_missing(
        ctx,
        hits,
        &["yum"],
        &[
            "install",
            "groupinstall",
            "localinstall",
            "reinstall",
            "update",
            "upgrade",
        ],
        "/var/cache/yum",
        &|c| c.is("yum") && c.positional(&[]).starts_with(&["clean", "all"]),
    );
}

fn dl3033(ctx: &Ctx, hits: &mut Hits) {
    runs_detail(ctx, hits, |c| {
        let pkgs: Vec<String> = rpm_install(c, "yum")?
            .into_iter()
            .filter(|p| !rpm_pinned(p) && !is_var(p))
            .collect();
        (!pkgs.is_empty()).then(|| pkgs.join(" "))
    });
}

const ZYPPER_INSTALL: &[&str] = &[
    "install",
    "in",
    "remove",
    "rm",
    "source-install",
    "si",
    "patch",
    "update",
    "up",
    "dist-upgrade",
    "dup",
];

fn dl3034(ctx: &Ctx, hits: &mut Hits) {
    runs_where(ctx, hits, |c| {
        sub_is(c, "zypper", ZYPPER_INSTALL, &[])
            && !c.has_any_flag(&["-n", "--non-interactive", "-y", "--no-confirm"])
    });
}

fn dl3035(ctx: &Ctx, hits: &mut Hits) {
    runs_where(ctx, hits, |c| {
        sub_is(c, "zypper", &["dist-upgrade", "dup"], &[])
    });
}

fn dl3036(ctx: &Ctx, hits: &mut Hits) {
    clean_missing(
        ctx,
        hits,
        &["zypper"],
        &["install", "in"],
        "/var/cache/zypp",
        &|c| sub_is(c, "zypper", &["clean", "cc"], &[]),
    );
}

fn dl3037(ctx: &Ctx, hits: &mut Hits) {
    runs_detail(ctx, hits, |c| {
        if !sub_is(c, "zypper", &["install", "in"], &[]) {
            return None;
        }
        let pkgs: Vec<&str> = c.positional(&[])[1..]
            .iter()
            .copied()
            .filter(|p| {
                !p.contains('=')
                    && !p.contains('<')
                    && !p.contains('>')
                    && !p.ends_with(".rpm")
                    && !is_var(p)
            })
            .collect();
        (!pkgs.is_empty()).then(|| pkgs.join(" "))
    });
}

fn dl3038(ctx: &Ctx, hits: &mut Hits) {
    runs_where(ctx, hits, |c| {
        (sub_is(
            c,
            "dnf",
            &[
                "install",
                "groupinstall",
                "localinstall",
                "reinstall",
                "update",
                "upgrade",
            ],
            &[],
        ) || sub_is(
            c,
            "microdnf",
            &["install", "reinstall", "update", "upgrade"],
            &[],
        )) && !c.has_any_flag(&["-y", "--assumeyes"])
    });
}

fn dl3040(ctx: &Ctx, hits: &mut Hits) {
    clean_missing(
        ctx,
        hits,
        &["dnf", "microdnf"],
        &["install", "groupinstall", "localinstall", "reinstall"],
        "/var/cache/dnf",
        &|c| (c.is("dnf") || c.is("microdnf")) && c.positional(&[]).starts_with(&["clean", "all"]),
    );
}

fn dl3041(ctx: &Ctx, hits: &mut Hits) {
    runs_detail(ctx, hits, |c| {
        let pkgs: Vec<String> = rpm_install(c, "dnf")
            .or_else(|| rpm_install(c, "microdnf"))?
            .into_iter()
            .filter(|p| !rpm_pinned(p) && !is_var(p) && !p.starts_with('@'))
            .collect();
        (!pkgs.is_empty()).then(|| pkgs.join(" "))
    });
}

fn stage_env(ctx: &Ctx, stage: Option<usize>, upto: usize) -> HashMap<String, String> {
    let mut env = HashMap::new();
    let Some(stage) = stage.and_then(|s| ctx.stages.get(s)) else {
        return env;
    };
    let lineage = ctx.lineage(stage);
    for s in lineage.iter().rev() {
        for &i in &s.instructions {
            if i >= upto {
                break;
            }
            if let (Keyword::Env, Body::Pairs(p)) = (ctx.ins(i).keyword, &ctx.ins(i).body) {
                env.extend(p.iter().cloned());
            }
        }
    }
    env
}

fn dl3042(ctx: &Ctx, hits: &mut Hits) {
    for run in &ctx.runs {
        if cached(run, ".cache/pip") || cached(run, "/root/.cache") {
            continue;
        }
        let env = stage_env(ctx, run.at.stage, run.index);
        let env_off = env.get("PIP_NO_CACHE_DIR").is_some_and(|v| {
            !matches!(
                v.to_ascii_lowercase().as_str(),
                "" | "0" | "false" | "no" | "off"
            )
        });
        if env_off {
            continue;
        }
        if run.script.any(|c| {
            pip_install(c).is_some_and(|args| {
                !args
                    .iter()
                    .any(|a| a == "--no-cache-dir" || a.starts_with("--no-cache-dir="))
            })
        }) {
            hits.at(run.at);
        }
    }
}

fn dl3043(ctx: &Ctx, hits: &mut Hits) {
    for ins in &ctx.parsed.instructions {
        if let Body::Onbuild(inner) = &ins.body {
            if matches!(
                inner.keyword,
                Keyword::Onbuild | Keyword::From | Keyword::Maintainer
            ) {
                hits.with(ins, inner.keyword.as_str());
            }
        }
    }
}

fn refers_to(value: &str, name: &str) -> bool {
    let mut rest = value;
    while let Some(i) = rest.find('$') {
        let after = &rest[i + 1..];
        let after = after.strip_prefix('{').unwrap_or(after);
        if let Some(tail) = after.strip_prefix(name) {
            if !tail.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_') {
                return true;
            }
        }
        rest = &rest[i + 1..];
    }
    false
}

fn dl3044(ctx: &Ctx, hits: &mut Hits) {
    for (idx, ins) in ctx.parsed.instructions.iter().enumerate() {
        let (Keyword::Env, Body::Pairs(pairs)) = (ins.keyword, &ins.body) else {
            continue;
        };
        let before = stage_env(ctx, ins.stage, idx);
        let args: HashSet<String> = ctx.parsed.instructions[..idx]
            .iter()
            .filter(|i| i.stage == ins.stage || i.stage.is_none())
            .filter_map(|i| match &i.body {
                Body::Arg(a) => Some(a.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>()),
                _ => None,
            })
            .flatten()
            .collect();
        for (n, (name, _)) in pairs.iter().enumerate() {
            if before.contains_key(name) || args.contains(name) {
                continue;
            }
            if pairs[n + 1..].iter().any(|(_, v)| refers_to(v, name)) {
                hits.with(ins, name.clone());
            }
        }
    }
}

fn dl3045(ctx: &Ctx, hits: &mut Hits) {
    for stage in &ctx.stages {
        let lineage = ctx.lineage(stage);
        let mut workdir = lineage[1..]
            .iter()
            .any(|s| ctx.stage_ins(s).any(|i| i.keyword == Keyword::Workdir));
        for ins in ctx.stage_ins(stage) {
            match (&ins.body, ins.keyword) {
                (_, Keyword::Workdir) => workdir = true,
                (Body::Files { dest, .. }, Keyword::Copy) if !workdir => {
                    let windows = dest.len() >= 2 && dest.as_bytes()[1] == b':';
                    if !dest.starts_with('/') && !is_var(dest) && !windows {
                        hits.with(ins, dest.clone());
                    }
                }
                _ => {}
            }
        }
    }
}

fn dl3046(ctx: &Ctx, hits: &mut Hits) {
    runs_where(ctx, hits, |c| {
        if !c.is("useradd") || c.has_any_flag(&["-l", "--no-log-init"]) {
            return false;
        }
        let mut uid = None;
        let mut it = c.args.iter();
        while let Some(a) = it.next() {
            if a == "-u" || a == "--uid" {
                uid = it.next().cloned();
            } else if let Some(v) = a.strip_prefix("--uid=") {
                uid = Some(v.to_string());
            } else if let Some(v) = a
                .strip_prefix("-u")
                .filter(|v| !v.is_empty() && v.chars().all(|c| c.is_ascii_digit()))
            {
                uid = Some(v.to_string());
            }
        }
        uid.is_some_and(|u| u.len() > 5 && u.chars().all(|c| c.is_ascii_digit()))
    });
}

fn dl3047(ctx: &Ctx, hits: &mut Hits) {
    runs_where(ctx, hits, |c| {
        c.is("wget")
            && !c.has_any_flag(&[
                "--progress",
                "-q",
                "--quiet",
                "-nv",
                "--no-verbose",
                "-o",
                "--output-file",
                "-a",
                "--append-output",
            ])
    });
}

fn label_key_ok(k: &str) -> bool {
    const RESERVED: &[&str] = &["com.docker.", "io.docker.", "org.dockerproject."];
    let b = k.as_bytes();
    !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && !k.contains("..")
        && !k.contains("--")
        && !RESERVED.iter().any(|r| k.starts_with(r))
}

fn dl3048(ctx: &Ctx, hits: &mut Hits) {
    for ins in &ctx.parsed.instructions {
        if let (Keyword::Label, Body::Pairs(pairs)) = (ins.keyword, &ins.body) {
            let bad: Vec<&str> = pairs
                .iter()
                .map(|(k, _)| k.as_str())
                .filter(|k| !label_key_ok(k))
                .collect();
            if !bad.is_empty() {
                hits.with(ins, bad.join(" "));
            }
        }
    }
}

fn dl3057(ctx: &Ctx, hits: &mut Hits) {
    let Some(last) = ctx.final_stage() else {
        return;
    };
    let has = ctx
        .lineage(last)
        .iter()
        .any(|s| ctx.stage_ins(s).any(|i| i.keyword == Keyword::Healthcheck));
    if !has {
        hits.at(ctx.ins(last.from));
    }
}

fn dl3059(ctx: &Ctx, hits: &mut Hits) {
    // Like hadolint: RUNs that already chain commands were split on purpose,
    // and RUNs with different flags (mounts) cannot be merged.
    let single = |idx: usize| {
        ctx.runs
            .iter()
            .find(|r| r.index == idx)
            .is_some_and(|r| r.script.commands.len() <= 1)
    };
    let ins = &ctx.parsed.instructions;
    for (i, pair) in ins.windows(2).enumerate() {
        let (a, b) = (&pair[0], &pair[1]);
        if a.keyword == Keyword::Run
            && b.keyword == Keyword::Run
            && a.stage == b.stage
            && a.flags == b.flags
            && single(i)
            && single(i + 1)
        {
            hits.at(b);
        }
    }
}

fn dl3060(ctx: &Ctx, hits: &mut Hits) {
    for run in &ctx.runs {
        if cached(run, "yarn") {
            continue;
        }
        let installs = run
            .script
            .any(|c| c.is("yarn") && c.subcommand(&[]) == Some("install"));
        let cleans = run
            .script
            .any(|c| c.is("yarn") && c.positional(&[]).starts_with(&["cache", "clean"]));
        if installs && !cleans {
            hits.at(run.at);
        }
    }
}

fn dl3061(ctx: &Ctx, hits: &mut Hits) {
    if let Some(ins) = ctx
        .parsed
        .instructions
        .iter()
        .take_while(|i| i.keyword != Keyword::From)
        .find(|i| i.keyword != Keyword::Arg)
    {
        hits.with(ins, ins.keyword.as_str());
    }
}

fn dl3062(ctx: &Ctx, hits: &mut Hits) {
    runs_detail(ctx, hits, |c| {
        if !sub_is(c, "go", &["install", "get", "run"], &[]) {
            return None;
        }
        let pkgs: Vec<&str> = c.positional(&[])[1..]
            .iter()
            .copied()
            .filter(|p| match p.rsplit_once('@') {
                Some((_, v)) => v == "latest",
                None => !p.starts_with('.') && !is_var(p),
            })
            .collect();
        (!pkgs.is_empty()).then(|| pkgs.join(" "))
    });
}

fn dl4000(ctx: &Ctx, hits: &mut Hits) {
    for ins in ctx
        .parsed
        .instructions
        .iter()
        .filter(|i| i.keyword == Keyword::Maintainer)
    {
        hits.at(ins);
    }
}

fn dl4001(ctx: &Ctx, hits: &mut Hits) {
    for stage in &ctx.stages {
        let (mut wget, mut curl) = (false, false);
        for run in ctx.runs_in(stage.index) {
            let w = run.script.any(|c| c.is("wget"));
            let c = run.script.any(|c| c.is("curl"));
            let before = wget && curl;
            wget |= w;
            curl |= c;
            if wget && curl && !before {
                hits.at(run.at);
            }
        }
    }
}

fn dl4003(ctx: &Ctx, hits: &mut Hits) {
    nth_in_stage(ctx, hits, Keyword::Cmd);
}

fn dl4004(ctx: &Ctx, hits: &mut Hits) {
    nth_in_stage(ctx, hits, Keyword::Entrypoint);
}

fn dl4005(ctx: &Ctx, hits: &mut Hits) {
    runs_where(ctx, hits, |c| {
        c.is("ln") && c.positional(&[]).last() == Some(&"/bin/sh")
    });
}

fn dl4006(ctx: &Ctx, hits: &mut Hits) {
    for stage in &ctx.stages {
        let mut safe_shell = false;
        for idx in &stage.instructions {
            let ins = ctx.ins(*idx);
            if let Body::Shell(words) = &ins.body {
                let prog = basename(words.first().map(String::as_str).unwrap_or(""));
                let posix = matches!(
                    prog,
                    "sh" | "bash" | "ash" | "dash" | "zsh" | "ksh" | "mksh"
                );
                // `-o pipefail`, also bundled (`-eo pipefail`) or in one
                // element (`"-o pipefail"`), as hadolint reads SHELL.
                let args: Vec<&str> = words.iter().flat_map(|w| w.split_whitespace()).collect();
                safe_shell = !posix
                    || args.windows(2).any(|w| {
                        w[0].len() > 1
                            && w[0].starts_with('-')
                            && !w[0].starts_with("--")
                            && w[0].contains('o')
                            && w[1] == "pipefail"
                    });
                continue;
            }
            if ins.keyword != Keyword::Run
                || safe_shell
                || matches!(ins.body, Body::Command(CommandForm::Exec(_)))
            {
                continue;
            }
            let Some(run) = ctx.runs.iter().find(|r| r.index == *idx) else {
                continue;
            };
            let cmds = &run.script.commands;
            let first_pipe = cmds.iter().position(Command::in_pipe);
            if let Some(p) = first_pipe {
                let set_before = cmds[..p].iter().any(|c| {
                    c.is("set")
                        && c.args.windows(2).any(|w| {
                            w[0].starts_with('-') && w[0].ends_with('o') && w[1] == "pipefail"
                        })
                });
                if !set_before {
                    hits.at(ins);
                }
            }
        }
    }
}

fn compiles(c: &Command) -> bool {
    sub_is(
        c,
        "cargo",
        &["build", "b", "install", "rustc"],
        &[
            "--manifest-path",
            "-p",
            "--package",
            "--target",
            "--features",
            "-F",
            "-j",
            "--jobs",
            "--profile",
            "--bin",
        ],
    ) || sub_is(c, "go", &["build", "install"], &[])
        || [
            "gcc", "g++", "cc", "c++", "clang", "clang++", "rustc", "javac",
        ]
        .contains(&c.program())
        || sub_is(
            c,
            "mvn",
            &["package", "install", "verify", "compile"],
            &["-f", "-s", "-P", "-pl"],
        )
        || ((c.is("gradle") || c.is("gradlew"))
            && c.positional(&[])
                .iter()
                .any(|t| ["build", "assemble", "bootJar", "installDist", "jar"].contains(t)))
        || sub_is(c, "dotnet", &["build", "publish"], &[])
}

fn tug001(ctx: &Ctx, hits: &mut Hits) {
    let Some(last) = ctx.final_stage() else {
        return;
    };
    for run in ctx.runs_in(last.index) {
        if run.script.any(compiles) {
            hits.at(run.at);
        }
    }
}

fn installs_deps(c: &Command) -> bool {
    sub_is(c, "npm", &["ci", "install", "i"], &[]) && c.positional(&[]).len() == 1
        || (c.is("yarn") && matches!(c.subcommand(&[]), None | Some("install")))
        || sub_is(c, "pnpm", &["install", "i"], &[])
        || pip_install(c).is_some_and(|a| {
            a.iter().any(|x| {
                x == "-r" || x == "--requirement" || x == "." || x.starts_with("--requirement=")
            })
        })
        || sub_is(c, "poetry", &["install"], &[])
        || sub_is(c, "pipenv", &["install", "sync"], &[])
        || sub_is(c, "uv", &["sync"], &[])
        || sub_is(c, "bundle", &["install"], &[])
        || (c.is("go") && c.positional(&[]).starts_with(&["mod", "download"]))
        || sub_is(c, "composer", &["install"], &[])
        || sub_is(c, "cargo", &["fetch"], &[])
}

fn copies_all(ins: &Instruction) -> bool {
    matches!(&ins.body, Body::Files { sources, .. } if ins.flag("from").is_none() && sources.iter().any(|s| s == "." || s == "./"))
}

fn tug002(ctx: &Ctx, hits: &mut Hits) {
    for stage in &ctx.stages {
        let mut all_copied = false;
        let mut installed_before = false;
        for idx in &stage.instructions {
            let ins = ctx.ins(*idx);
            if copies_all(ins) {
                all_copied = true;
                continue;
            }
            let Some(run) = ctx.runs.iter().find(|r| r.index == *idx) else {
                continue;
            };
            if run.script.any(installs_deps) {
                if all_copied && !installed_before {
                    hits.at(ins);
                }
                installed_before = true;
            }
        }
    }
}

fn cargo_builds(c: &Command) -> bool {
    sub_is(
        c,
        "cargo",
        &["build", "b", "install"],
        &[
            "--manifest-path",
            "-p",
            "--package",
            "--target",
            "--features",
            "-F",
            "-j",
            "--jobs",
            "--profile",
            "--bin",
        ],
    )
}

fn copies_sources(ins: &Instruction) -> bool {
    copies_all(ins)
        || matches!(&ins.body, Body::Files { sources, .. } if ins.flag("from").is_none()
            && sources.iter().any(|s| basename(s) == "src" || s.ends_with(".rs") || s == "crates"))
}

fn tug003(ctx: &Ctx, hits: &mut Hits) {
    for stage in &ctx.stages {
        let lineage = ctx.lineage(stage);
        let mut warmed = lineage[1..]
            .iter()
            .any(|s| ctx.runs_in(s.index).any(|r| r.script.any(cargo_builds)));
        let mut sources = false;
        for idx in &stage.instructions {
            let ins = ctx.ins(*idx);
            if copies_sources(ins) {
                sources = true;
                continue;
            }
            let Some(run) = ctx.runs.iter().find(|r| r.index == *idx) else {
                continue;
            };
            let chef = run.script.any(|c| {
                c.is("cargo") && c.positional(&[]).starts_with(&["chef", "cook"])
                    || sub_is(c, "cargo", &["fetch"], &[])
            });
            if chef {
                warmed = true;
                continue;
            }
            if run.script.any(cargo_builds) {
                let cache = cached(run, "target") || cached(run, "cargo");
                if !warmed && sources && !cache {
                    hits.at(run.at);
                }
                warmed = true;
            }
        }
    }
}

fn tug004(ctx: &Ctx, hits: &mut Hits) {
    let f = ctx.facts;
    if !f.scanned || f.has_dockerignore {
        return;
    }
    if let (Some(why), Some(first)) = (&f.large, ctx.parsed.instructions.first()) {
        hits.with(first, why.clone());
    }
}

fn secret_name(name: &str) -> bool {
    let n = name.to_ascii_uppercase();
    if n.contains("PUBLIC") || n.contains("GPG") || n.ends_with("_FILE") || n.ends_with("_PATH") {
        return false;
    }
    const SUFFIXES: &[&str] = &[
        "TOKEN",
        "SECRET",
        "PASSWORD",
        "PASSWD",
        "KEY",
        "APIKEY",
        "CREDENTIALS",
    ];
    SUFFIXES
        .iter()
        .any(|s| n == *s || n.ends_with(&format!("_{s}")))
}

fn tug005(ctx: &Ctx, hits: &mut Hits) {
    for ins in &ctx.parsed.instructions {
        let names: Vec<&str> = match &ins.body {
            Body::Pairs(p) if ins.keyword == Keyword::Env => p
                .iter()
                .filter(|(k, v)| secret_name(k) && !v.is_empty())
                .map(|(k, _)| k.as_str())
                .collect(),
            Body::Arg(a) => a
                .iter()
                .filter(|(k, v)| secret_name(k) && v.as_deref().is_some_and(|v| !v.is_empty()))
                .map(|(k, _)| k.as_str())
                .collect(),
            _ => continue,
        };
        if !names.is_empty() {
            hits.with(ins, names.join(" "));
        }
    }
}

fn tug006(ctx: &Ctx, hits: &mut Hits) {
    let Some(last) = ctx.final_stage() else {
        return;
    };
    let has_user = ctx
        .lineage(last)
        .iter()
        .any(|s| ctx.stage_ins(s).any(|i| i.keyword == Keyword::User));
    if !has_user {
        hits.at(ctx.ins(last.from));
    }
}

// ---------- ShellCheck-style checks of RUN scripts ----------

/// Commands whose single-quoted arguments are meant for another interpreter,
/// where ShellCheck does not report SC2016.
const OWN_QUOTING: &[&str] = &[
    "sh",
    "bash",
    "ash",
    "dash",
    "zsh",
    "ksh",
    "awk",
    "gawk",
    "mawk",
    "nawk",
    "perl",
    "python",
    "python3",
    "ruby",
    "php",
    "node",
    "sed",
    "find",
    "xargs",
    "trap",
    "eval",
    "ssh",
    "jq",
    "yq",
    "sudo",
    "su",
    "expect",
    "docker",
    "podman",
    "kubectl",
    "alias",
    "git",
    "envsubst",
    "printf",
    "runuser",
    "gosu",
    "su-exec",
    "chroot",
    "env",
    "exec",
    "nohup",
    "timeout",
    "watch",
    "psql",
    "mysql",
    "sqlite3",
    "gpg",
    "rename",
    "dpkg-query",
    "xprop",
    "unset",
    "export",
    "declare",
    "local",
    "readonly",
    "typeset",
    "set",
];

fn sc2016(ctx: &Ctx, hits: &mut Hits) {
    for run in &ctx.runs {
        let bad = run.script.commands.iter().any(|c| {
            !OWN_QUOTING.contains(&c.program())
                && c.raw.iter().skip(1).any(|w| single_quoted_expansion(w))
        });
        if bad {
            hits.at(run.at);
        }
    }
}

/// A single-quoted part of a word holds `$(`, a backtick, `${` or `$NAME`.
fn single_quoted_expansion(word: &str) -> bool {
    let chars: Vec<char> = word.chars().collect();
    let mut i = 0;
    let mut double = false;
    while i < chars.len() {
        match chars[i] {
            '\\' if !double || i + 1 < chars.len() => i += 1,
            '"' => double = !double,
            '\'' if !double => {
                let start = i + 1;
                let end = chars[start..]
                    .iter()
                    .position(|&c| c == '\'')
                    .map_or(chars.len(), |n| start + n);
                let inner = &chars[start..end];
                let found = inner.windows(2).any(|w| {
                    w[0] == '$'
                        && (w[1] == '(' || w[1] == '{' || w[1].is_ascii_alphabetic() || w[1] == '_')
                }) || inner.contains(&'`');
                if found {
                    return true;
                }
                i = end;
            }
            _ => {}
        }
        i += 1;
    }
    false
}

/// Names of unquoted `$NAME` / `${NAME...}` expansions in a word as written.
fn unquoted_vars(word: &str) -> Vec<String> {
    let chars: Vec<char> = word.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let mut double = false;
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 1,
            '"' => double = !double,
            '\'' if !double => {
                i += 1;
                while i < chars.len() && chars[i] != '\'' {
                    i += 1;
                }
            }
            '$' if !double => {
                let name_start = match chars.get(i + 1) {
                    Some('{') if chars.get(i + 2) != Some(&'#') => i + 2,
                    Some(c) if c.is_ascii_alphabetic() || *c == '_' || c.is_ascii_digit() => i + 1,
                    _ => {
                        i += 1;
                        continue;
                    }
                };
                let mut j = name_start;
                while j < chars.len() && (chars[j].is_ascii_alphanumeric() || chars[j] == '_') {
                    j += 1;
                    if name_start == i + 1 && chars[name_start].is_ascii_digit() {
                        break;
                    }
                }
                if j > name_start {
                    out.push(chars[name_start..j].iter().collect());
                }
                i = j;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    out
}

fn sc2086(ctx: &Ctx, hits: &mut Hits) {
    for run in &ctx.runs {
        // Variables with a value set in the Dockerfile or the script are
        // treated as safe, as ShellCheck does for values it can see; a stage
        // built `FROM` another one has its variables too, as in hadolint.
        let stage = run.at.stage.and_then(|s| ctx.stages.get(s));
        let inherited = stage
            .map(|s| ctx.lineage(s))
            .unwrap_or_default()
            .into_iter()
            .skip(1)
            .flat_map(|s| s.instructions.iter().map(|&i| ctx.ins(i)));
        let known: HashSet<&str> = ctx
            .stage_ins_upto(run)
            .chain(inherited)
            .flat_map(|ins| match &ins.body {
                Body::Pairs(p) if ins.keyword == Keyword::Env => {
                    p.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>()
                }
                Body::Arg(a) => a.iter().map(|(k, _)| k.as_str()).collect(),
                _ => Vec::new(),
            })
            .chain(run.script.assigned.iter().map(String::as_str))
            .collect();
        let mut names: Vec<String> = Vec::new();
        for c in &run.script.commands {
            for w in &c.raw {
                for v in unquoted_vars(w) {
                    if !known.contains(v.as_str()) && !names.contains(&v) {
                        names.push(v);
                    }
                }
            }
        }
        if !names.is_empty() {
            let list: Vec<String> = names.iter().map(|n| format!("${n}")).collect();
            hits.with(run.at, list.join(", "));
        }
    }
}

fn sc2164(ctx: &Ctx, hits: &mut Hits) {
    for run in &ctx.runs {
        if !run.script.errexit
            && run
                .script
                .any(|c| c.is("cd") && !c.guarded && !c.raw.is_empty())
        {
            hits.at(run.at);
        }
    }
}

fn tug007(ctx: &Ctx, hits: &mut Hits) {
    for run in &ctx.runs {
        if let Some(h) = run
            .script
            .heredocs
            .iter()
            .find(|h| h.continued_into_terminator)
        {
            hits.with(run.at, format!("before `{}`", h.tag));
        }
    }
}

// ---------- label schema (hadolint's `label-schema` config) ----------

/// Labels of the final image (its stage and the stages it builds on), with the LABEL that set them.
fn final_labels<'a>(ctx: &'a Ctx) -> Vec<(&'a Instruction, &'a str, &'a str)> {
    let Some(last) = ctx.final_stage() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for s in ctx.lineage(last).iter().rev() {
        for ins in ctx.stage_ins(s) {
            if let (Keyword::Label, Body::Pairs(pairs)) = (ins.keyword, &ins.body) {
                out.extend(pairs.iter().map(|(k, v)| (ins, k.as_str(), v.as_str())));
            }
        }
    }
    out
}

fn dl3049(ctx: &Ctx, hits: &mut Hits) {
    let Some(last) = ctx.final_stage() else {
        return;
    };
    let labels = final_labels(ctx);
    for key in ctx.config.label_schema.keys() {
        if !labels.iter().any(|(_, k, _)| k == key) {
            hits.with(ctx.ins(last.from), key.clone());
        }
    }
}

fn dl3050(ctx: &Ctx, hits: &mut Hits) {
    if !ctx.config.strict_labels {
        return;
    }
    for (ins, key, _) in final_labels(ctx) {
        if !ctx.config.label_schema.contains_key(key) {
            hits.with(ins, key);
        }
    }
}

fn schema_check(ctx: &Ctx, hits: &mut Hits, ty: LabelType, valid: impl Fn(&str) -> bool) {
    for (ins, key, value) in final_labels(ctx) {
        if ctx.config.label_schema.get(key) == Some(&ty) && !value.is_empty() && !valid(value) {
            hits.with(ins, format!("{key}={value}"));
        }
    }
}

fn dl3051(ctx: &Ctx, hits: &mut Hits) {
    for (ins, key, value) in final_labels(ctx) {
        if ctx.config.label_schema.contains_key(key) && value.trim().is_empty() {
            hits.with(ins, key);
        }
    }
}

fn dl3052(ctx: &Ctx, hits: &mut Hits) {
    schema_check(ctx, hits, LabelType::Url, |v| url::Url::parse(v).is_ok());
}

fn dl3053(ctx: &Ctx, hits: &mut Hits) {
    static RFC3339: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let re = RFC3339.get_or_init(|| {
        regex::Regex::new(r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])[Tt ]([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(\.\d+)?([Zz]|[+-]([01]\d|2[0-3]):[0-5]\d)$")
            .expect("valid regex")
    });
    schema_check(ctx, hits, LabelType::Rfc3339, |v| re.is_match(v));
}

fn dl3054(ctx: &Ctx, hits: &mut Hits) {
    // One listed identifier, spelled as the list spells it (no `+`, no expression).
    schema_check(ctx, hits, LabelType::Spdx, |v| {
        spdx::license_id(v).is_some_and(|id| id.name == v)
    });
}

fn dl3055(ctx: &Ctx, hits: &mut Hits) {
    schema_check(ctx, hits, LabelType::Hash, |v| {
        (7..=40).contains(&v.len()) && v.chars().all(|c| c.is_ascii_hexdigit())
    });
}

fn dl3056(ctx: &Ctx, hits: &mut Hits) {
    // The regular expression published with the Semantic Versioning 2.0.0 spec.
    static SEMVER: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let re = SEMVER.get_or_init(|| {
        regex::Regex::new(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$")
            .expect("valid regex")
    });
    schema_check(ctx, hits, LabelType::Semver, |v| re.is_match(v));
}

fn dl3058(ctx: &Ctx, hits: &mut Hits) {
    schema_check(ctx, hits, LabelType::Email, |v| {
        v.parse::<email_address::EmailAddress>().is_ok()
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::{lint, Config};
    use std::path::Path;

    fn ids(ex: &Example) -> Vec<&'static str> {
        let mut config = Config::parse(ex.config, Path::new("example.yaml")).unwrap();
        config.strict = true;
        lint(ex.dockerfile, &config, &ex.facts())
            .findings
            .into_iter()
            .map(|f| f.rule)
            .collect()
    }

    #[test]
    fn every_rule_fires_on_its_example_and_not_on_the_other() {
        let mut failures = Vec::new();
        for rule in RULES {
            assert!(
                !rule.fires.dockerfile.is_empty() && !rule.passes.dockerfile.is_empty(),
                "{} has no examples",
                rule.id
            );
            if !ids(&rule.fires).contains(&rule.id) {
                failures.push(format!(
                    "{} does not fire on {:?}",
                    rule.id, rule.fires.dockerfile
                ));
            }
            if ids(&rule.passes).contains(&rule.id) {
                failures.push(format!("{} fires on {:?}", rule.id, rule.passes.dockerfile));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn registry_is_well_formed() {
        let mut seen = HashSet::new();
        for r in RULES {
            assert!(seen.insert(r.id), "duplicate {}", r.id);
            assert!(!r.message.is_empty() && !r.why.is_empty(), "{}", r.id);
            assert!(!r.why.contains('\n'), "{} why is one line", r.id);
        }
        let dl = RULES.iter().filter(|r| r.id.starts_with("DL")).count();
        assert!(dl >= 40, "{dl} DL rules");
    }

    fn fired(text: &str) -> Vec<&'static str> {
        let config = Config {
            strict: true,
            ..Config::default()
        };
        lint(text, &config, &ContextFacts::default())
            .findings
            .into_iter()
            .map(|f| f.rule)
            .collect()
    }

    #[test]
    fn rules_see_commands_not_substrings() {
        let f = fired(
            "FROM debian:12\nRUN echo 'sudo apt-get install curl' && printf 'cd /x'\nUSER 1\n",
        );
        assert!(
            !f.contains(&"DL3004") && !f.contains(&"DL3008") && !f.contains(&"DL3003"),
            "{f:?}"
        );
    }

    #[test]
    fn heredoc_run_is_linted() {
        let f = fired(
            "FROM debian:12\nRUN <<EOF\nset -e\napt-get update\napt-get install -y curl\nEOF\n",
        );
        assert!(f.contains(&"DL3008") && f.contains(&"DL3015"), "{f:?}");
    }

    #[test]
    fn heredoc_fed_to_a_shell_is_linted() {
        for text in [
            "FROM debian:12\nRUN <<EOT bash\napt-get install -y curl\nEOT\n",
            "FROM debian:12\nRUN <<EOT sh -e\napt-get install -y curl\nEOT\n",
        ] {
            let f = fired(text);
            assert!(f.contains(&"DL3008") && f.contains(&"DL3015"), "{f:?}");
        }
        let f = fired("FROM debian:12\nRUN cat <<EOT > /x.sh\napt-get install -y curl\nEOT\n");
        assert!(
            !f.contains(&"DL3008"),
            "a heredoc written to a file is data: {f:?}"
        );
    }

    #[test]
    fn onbuild_run_is_linted() {
        let f = fired("FROM debian:12\nONBUILD RUN sudo true\n");
        assert!(f.contains(&"DL3004"), "{f:?}");
    }

    #[test]
    fn apt_lists_in_a_builder_stage_do_not_matter() {
        let f = fired("FROM debian:12 AS b\nRUN apt-get update && apt-get install -y --no-install-recommends gcc=12\nFROM scratch\n");
        assert!(!f.contains(&"DL3009"), "{f:?}");
    }

    #[test]
    fn pipefail_set_in_script_is_enough() {
        let f = fired("FROM debian:12\nRUN set -euo pipefail; curl -fsSL x | sh\n");
        assert!(!f.contains(&"DL4006"), "{f:?}");
        let f = fired("FROM debian:12\nRUN curl -fsSL x | sh; set -o pipefail\n");
        assert!(f.contains(&"DL4006"), "{f:?}");
    }

    fn fired_default(text: &str) -> Vec<&'static str> {
        lint(text, &Config::default(), &ContextFacts::default())
            .findings
            .into_iter()
            .map(|f| f.rule)
            .collect()
    }

    #[test]
    fn bundled_pipefail_in_shell_counts() {
        for shell in [
            r#"["/bin/bash", "-eo", "pipefail", "-c"]"#,
            r#"["/bin/bash", "-euxo", "pipefail", "-c"]"#,
            r#"["/bin/bash", "-o pipefail", "-c"]"#,
        ] {
            let f = fired(&format!(
                "FROM debian:12\nSHELL {shell}\nRUN curl -fsSL x | sh\n"
            ));
            assert!(!f.contains(&"DL4006"), "{shell}: {f:?}");
        }
        let f = fired("FROM debian:12\nSHELL [\"/bin/bash\", \"-e\", \"-c\"]\nRUN curl x | sh\n");
        assert!(f.contains(&"DL4006"), "{f:?}");
    }

    #[test]
    fn pipe_in_a_loop_word_list_needs_pipefail() {
        let f =
            fired_default("FROM alpine:3.20\nRUN for f in $(ls | sort); do echo \"$f\"; done\n");
        assert!(f.contains(&"DL4006"), "{f:?}");
    }

    #[test]
    fn loop_variable_over_command_output_is_quoted() {
        let f = fired_default("FROM alpine:3.20\nRUN for f in $(ls); do cp $f /x; done\n");
        assert!(f.contains(&"SC2086"), "{f:?}");
        let f = fired_default("FROM alpine:3.20\nRUN for f in a b; do cp $f /x; done\n");
        assert!(!f.contains(&"SC2086"), "{f:?}");
    }

    #[test]
    fn quoted_pipe_in_a_script_the_shell_parser_rejects_is_no_pipe() {
        let f = fired_default("FROM debian:12\nRUN a && (for /D %i in (x) do y) && powershell -Command \"dir | where x\"\n");
        assert!(!f.contains(&"DL4006"), "{f:?}");
    }

    #[test]
    fn latest_written_after_a_variable_is_dl3007() {
        let f = fired_default("ARG ARCH=amd64\nFROM quay.io/x/busybox-${ARCH}:latest\n");
        assert!(f.contains(&"DL3007"), "{f:?}");
        let f = fired_default("ARG ARCH\nFROM busybox-${ARCH}:latest\n");
        assert!(f.contains(&"DL3007"), "{f:?}");
        // Only --strict follows the ARG into the tag, as before.
        let text = "ARG TAG=latest\nFROM busybox:${TAG}\n";
        assert!(!fired_default(text).contains(&"DL3007"));
        assert_eq!(fired(text).iter().filter(|r| **r == "DL3007").count(), 1);
        let text = "ARG ARCH=amd64\nFROM busybox-${ARCH}:latest\n";
        assert_eq!(fired(text).iter().filter(|r| **r == "DL3007").count(), 1);
    }

    #[test]
    fn a_stage_knows_the_variables_of_the_stage_it_is_built_from() {
        let text = "FROM debian:12 AS base\nENV APP=/app\nFROM base AS b\nRUN chmod a+rwX ${APP}/x\nFROM base\nRUN chmod a+rwX ${APP}/x\n";
        assert!(!fired_default(text).contains(&"SC2086"));
        let text =
            "FROM debian:12 AS base\nENV APP=/app\nFROM debian:12\nRUN chmod a+rwX ${APP}/x\n";
        assert!(fired_default(text).contains(&"SC2086"));
    }

    #[test]
    fn healthcheck_shell_form_is_dl3025() {
        let f = fired_default(
            "FROM debian:12\nHEALTHCHECK --interval=5s CMD curl -f http://localhost/\n",
        );
        assert!(f.contains(&"DL3025"), "{f:?}");
        for hc in ["CMD [\"curl\", \"-f\", \"http://localhost/\"]", "NONE"] {
            let f = fired_default(&format!("FROM debian:12\nHEALTHCHECK {hc}\n"));
            assert!(!f.contains(&"DL3025"), "{hc}: {f:?}");
        }
    }

    #[test]
    fn inline_and_global_ignores() {
        let text = "FROM debian:12\n# tug ignore=DL3008,DL3015\nRUN apt-get install -y curl\n# hadolint ignore=DL3015\nRUN apt-get install -y wget\n";
        let f = fired(text);
        assert_eq!(f.iter().filter(|r| **r == "DL3008").count(), 1, "{f:?}");
        assert!(!f.contains(&"DL3015"), "{f:?}");
        let f = fired("# hadolint global ignore=DL3006\nFROM debian\n");
        assert!(!f.contains(&"DL3006"), "{f:?}");
    }

    #[test]
    fn default_profile_is_hadolints() {
        let text = "FROM debian:12\nCMD [\"app\"]\n";
        let default = lint(text, &Config::default(), &ContextFacts::default());
        assert!(default.findings.is_empty(), "{:?}", default.findings);
        assert!(fired(text).contains(&"DL3057") && fired(text).contains(&"TUG006"));
        // Naming a strict rule in `override` turns it on, as in hadolint.
        let config = Config::parse("override:\n  info: [DL3057]\n", Path::new("c")).unwrap();
        let r = lint(text, &config, &ContextFacts::default());
        assert_eq!(r.findings.len(), 1, "{:?}", r.findings);
        assert_eq!(r.findings[0].rule, "DL3057");
    }

    #[test]
    fn config_overrides_and_ignores() {
        let config = Config::parse(
            "ignored: [DL3006]\noverride:\n  error: [TUG006]\n",
            Path::new("c"),
        )
        .unwrap();
        let r = lint("FROM debian\n", &config, &ContextFacts::default());
        assert!(!r.findings.iter().any(|f| f.rule == "DL3006"));
        let f = r.findings.iter().find(|f| f.rule == "TUG006").unwrap();
        assert_eq!(f.severity, Severity::Error);
    }

    #[test]
    fn parse_errors_are_reported_and_the_rest_is_linted() {
        let r = fired("FROM debian:12\nBOGUS x\nRUN sudo true\n");
        assert!(r.contains(&"DL1000") && r.contains(&"DL3004"), "{r:?}");
    }
}
