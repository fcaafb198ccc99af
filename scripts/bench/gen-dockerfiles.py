#!/usr/bin/env python3
"""Writes a corpus of realistic Dockerfiles for lint benchmarks.

Each file goes to OUT/NNNN/Dockerfile (one build context per file, with a
couple of small source files beside it). Deterministic for a given --seed.
"""
import argparse
import os
import random

DEBIAN = ["debian:12", "debian:bookworm-slim", "ubuntu:22.04", "ubuntu:24.04", "debian"]
ALPINE = ["alpine:3.20", "alpine:3.19", "alpine:latest", "alpine"]
APT_PKGS = ["curl", "ca-certificates", "git", "build-essential", "libssl-dev", "pkg-config",
            "python3", "python3-pip", "unzip", "wget", "gnupg", "jq", "tzdata", "locales"]
APK_PKGS = ["curl", "ca-certificates", "git", "bash", "openssl", "tzdata", "su-exec", "jq", "make", "gcc", "musl-dev"]
PIP_PKGS = ["requests", "flask", "gunicorn", "numpy", "pandas", "fastapi", "uvicorn", "boto3", "pydantic"]
NPM_PKGS = ["typescript", "pm2", "serve", "nodemon", "yarn", "pnpm"]
GEMS = ["bundler", "rake", "puma", "rails"]


def pick(r, xs, lo=1, hi=4):
    return r.sample(xs, min(len(xs), r.randint(lo, hi)))


def pin(r, pkg, sep="="):
    return f"{pkg}{sep}{r.randint(1, 9)}.{r.randint(0, 20)}.{r.randint(0, 9)}" if r.random() < 0.4 else pkg


def apt_block(r):
    pkgs = " ".join(pin(r, p) for p in pick(r, APT_PKGS, 2, 6))
    y = "-y " if r.random() < 0.8 else ""
    rec = "--no-install-recommends " if r.random() < 0.6 else ""
    clean = " \\\n && rm -rf /var/lib/apt/lists/*" if r.random() < 0.6 else ""
    tool = "apt" if r.random() < 0.1 else "apt-get"
    return f"RUN {tool} update \\\n && {tool} install {y}{rec}{pkgs}{clean}\n"


def apk_block(r):
    pkgs = " ".join(pin(r, p) for p in pick(r, APK_PKGS, 2, 5))
    nc = "--no-cache " if r.random() < 0.7 else ""
    return f"RUN apk add {nc}{pkgs}\n"


def common_tail(r, port):
    out = []
    if r.random() < 0.5:
        out.append(f"EXPOSE {port}\n")
    if r.random() < 0.4:
        out.append('HEALTHCHECK --interval=30s CMD ["/bin/sh", "-c", "wget -qO- localhost:%d/health || exit 1"]\n' % port)
    if r.random() < 0.6:
        out.append(f"USER {r.choice(['10001', 'app', 'nobody', 'root'])}\n")
    if r.random() < 0.7:
        out.append('CMD ["./app"]\n')
    else:
        out.append("CMD ./app --port %d\n" % port)
    return "".join(out)


def python_file(r):
    base = r.choice(["python:3.12-slim", "python:3.11", "python:latest", "python"])
    pkgs = " ".join(pin(r, p, "==") for p in pick(r, PIP_PKGS, 1, 4))
    ncd = "--no-cache-dir " if r.random() < 0.5 else ""
    s = f"FROM {base}\nWORKDIR /app\n"
    if r.random() < 0.5:
        s += "COPY requirements.txt .\n"
        s += f"RUN pip install {ncd}-r requirements.txt\nCOPY . .\n"
    else:
        s += f"COPY . .\nRUN pip install {ncd}-r requirements.txt && pip install {ncd}{pkgs}\n"
    s += "ENV PYTHONUNBUFFERED=1 APP_ENV=production\n"
    if r.random() < 0.2:
        s += "ENV API_TOKEN=secret-value-123\n"
    return s + common_tail(r, 8000)


def node_file(r):
    base = r.choice(["node:22-alpine", "node:20", "node:lts", "node"])
    s = f"FROM {base} AS deps\nWORKDIR /app\nCOPY package.json package-lock.json ./\n"
    s += "RUN npm ci --omit=dev\n" if r.random() < 0.6 else "RUN yarn install --frozen-lockfile\n"
    if r.random() < 0.5:
        s += f"RUN npm install -g {' '.join(pin(r, p, '@') for p in pick(r, NPM_PKGS, 1, 2))}\n"
    s += f"FROM {base}\nWORKDIR /app\nCOPY --from=deps /app/node_modules ./node_modules\nCOPY . .\n"
    s += "ENV NODE_ENV=production\n"
    return s + common_tail(r, 3000)


def go_file(r):
    s = "FROM golang:1.23 AS build\nWORKDIR /src\nCOPY go.mod go.sum ./\nRUN go mod download\nCOPY . .\n"
    s += "RUN CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /out/app ./cmd/app\n"
    if r.random() < 0.3:
        s += "RUN go install golang.org/x/tools/cmd/stringer@latest\n"
    final = r.choice(["gcr.io/distroless/static:nonroot", "scratch", "alpine:3.20"])
    s += f"FROM {final}\nCOPY --from=build /out/app /app\n"
    if r.random() < 0.2:
        s += "COPY --from=builder /etc/passwd /etc/passwd\n"
    return s + common_tail(r, 8080).replace("./app", "/app")


def rust_file(r):
    s = "FROM rust:1.83 AS build\nWORKDIR /src\n"
    if r.random() < 0.5:
        s += "COPY Cargo.toml Cargo.lock ./\nRUN mkdir src && echo 'fn main() {}' > src/main.rs && cargo build --release\n"
    s += "COPY . .\nRUN cargo build --release --locked\n"
    if r.random() < 0.3:
        return s + common_tail(r, 8080)
    s += "FROM debian:bookworm-slim\n" + apt_block(r)
    s += "COPY --from=build /src/target/release/app /usr/local/bin/app\n"
    return s + common_tail(r, 8080)


def debian_file(r):
    s = f"FROM {r.choice(DEBIAN)}\n"
    if r.random() < 0.2:
        s += "MAINTAINER ops@example.com\n"
    s += "ARG DEBIAN_FRONTEND=noninteractive\n" + apt_block(r)
    if r.random() < 0.4:
        s += "RUN cd /tmp && wget https://example.com/tool.tar.gz && tar -xzf tool.tar.gz\n"
    if r.random() < 0.4:
        s += "RUN curl -fsSL https://example.com/install.sh | bash\n"
    if r.random() < 0.3:
        s += "RUN useradd -u 1000100 app\n"
    s += f"WORKDIR {r.choice(['/app', 'app', '/srv/app'])}\n"
    s += r.choice(["COPY . .\n", "ADD . /app/\n", "COPY src/ /app/src/\n", "ADD https://example.com/a.tar.gz /opt/\n"])
    if r.random() < 0.3:
        s += "RUN chmod +x /app/run.sh\nRUN mkdir -p /data\n"
    return s + common_tail(r, 8080)


def alpine_file(r):
    s = f"FROM {r.choice(ALPINE)}\n" + apk_block(r)
    if r.random() < 0.5:
        s += "RUN <<EOF\nset -e\naddgroup -S app\nadduser -S app -G app\nmkdir -p /app\nEOF\n"
    if r.random() < 0.3:
        s += "COPY <<EOF /etc/app.conf\nlisten = 0.0.0.0:8080\nlog = info\nEOF\n"
    s += "WORKDIR /app\nCOPY --chown=app:app . .\n"
    return s + common_tail(r, 8080)


def rpm_file(r):
    kind = r.choice(["yum", "dnf", "zypper"])
    base = {"yum": "centos:7", "dnf": "fedora:41", "zypper": "opensuse/leap:15.6"}[kind]
    pkgs = " ".join(pick(r, ["httpd", "nginx", "git", "make", "gcc", "python3"], 1, 3))
    y = "-y " if r.random() < 0.7 else ""
    if kind == "zypper":
        clean = " && zypper clean" if r.random() < 0.5 else ""
        run = f"RUN zypper {'-n ' if y else ''}install {pkgs}{clean}\n"
    else:
        clean = f" && {kind} clean all" if r.random() < 0.5 else ""
        run = f"RUN {kind} install {y}{pkgs}{clean}\n"
    return f"FROM {base}\n{run}WORKDIR /srv\nCOPY . /srv/\n" + common_tail(r, 80)


def ruby_file(r):
    s = "FROM ruby:3.3-slim\nWORKDIR /app\nCOPY Gemfile Gemfile.lock ./\n"
    s += f"RUN gem install {' '.join(pick(r, GEMS, 1, 2))} && bundle install\nCOPY . .\n"
    return s + common_tail(r, 3000)


KINDS = [python_file, node_file, go_file, rust_file, debian_file, alpine_file, rpm_file, ruby_file]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=240)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    r = random.Random(a.seed)
    for i in range(a.count):
        kind = KINDS[i % len(KINDS)]
        text = "# syntax=docker/dockerfile:1\n" if r.random() < 0.3 else ""
        text += f"# {kind.__name__.replace('_file', '')} service {i}\n" + kind(r)
        if r.random() < 0.15:
            text = text.replace("RUN ", "# hadolint ignore=DL3008\nRUN ", 1)
        d = os.path.join(a.out, f"{i:04d}")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "Dockerfile"), "w") as f:
            f.write(text)
        with open(os.path.join(d, "main.txt"), "w") as f:
            f.write("placeholder source\n" * r.randint(1, 50))
    print(a.count)


if __name__ == "__main__":
    main()
