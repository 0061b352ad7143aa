"""A corpus of secret shapes, each planted in the syntax people write it in, and of ordinary
code that must reach the model unchanged.

Every secret value is generated for this run (a seeded random source, so a failure
reproduces), so no real key is in the repository and no test passes by a memorised string.
`PLANTED` holds (name, text, secret): after redaction `secret` must be gone from `text`.
`CLEAN` holds texts that redaction must leave exactly as they are.
"""

from __future__ import annotations

import random
import string

_rng = random.Random(20261201)

ALNUM = string.ascii_letters + string.digits
UPPER_DIGITS = string.ascii_uppercase + string.digits
LOWER_DIGITS = string.ascii_lowercase + string.digits
HEX = "0123456789abcdef"
B64 = ALNUM + "+/"


def rand(n: int, alphabet: str = ALNUM) -> str:
    return "".join(_rng.choice(alphabet) for _ in range(n))


def _pem(kind: str) -> tuple[str, str]:
    body = "\n".join(rand(64, B64) for _ in range(6))
    return f"-----BEGIN {kind}-----\n{body}\n-----END {kind}-----", body.split("\n")[2]


aws_id = "AKIA" + rand(16, UPPER_DIGITS)
aws_secret = rand(40, B64)
openai_key = "sk-proj-" + rand(48, ALNUM + "-_")
anthropic_key = "sk-ant-api03-" + rand(80, ALNUM + "-_")
gh_classic = "ghp_" + rand(36)
gh_fine = "github_pat_" + rand(22) + "_" + rand(59)
gh_oauth = "gho_" + rand(36)
gitlab = "glpat-" + rand(20, ALNUM + "-_")
slack_bot = "xoxb-" + rand(11, string.digits) + "-" + rand(12, string.digits) + "-" + rand(24)
slack_hook = (
    f"https://hooks.slack.com/services/T{rand(8, UPPER_DIGITS)}/B{rand(8, UPPER_DIGITS)}/{rand(24)}"
)
stripe = "sk_live_" + rand(24)
stripe_test = "sk_test_" + rand(99)
google = "AIza" + rand(35, ALNUM + "-_")
hf = "hf_" + rand(34)
twilio = "SK" + rand(32, LOWER_DIGITS)
sendgrid = "SG." + rand(22, ALNUM + "-_") + "." + rand(43, ALNUM + "-_")
pypi = "pypi-AgEIcHlwaS5vcmc" + rand(80, ALNUM + "-_")
npm = "npm_" + rand(36)
jwt = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    + "eyJ"
    + rand(40, ALNUM + "-_")
    + "."
    + rand(43, ALNUM + "-_")
)
azure = "AccountKey=" + rand(86, B64) + "=="
discord = "M" + rand(23, ALNUM + "-_") + "." + rand(6) + "." + rand(27, ALNUM + "-_")
telegram = rand(9, string.digits) + ":" + rand(35, ALNUM + "-_")
mailchimp = rand(32, HEX) + "-us12"
rsa_key, rsa_line = _pem("RSA PRIVATE KEY")
ssh_key, ssh_line = _pem("OPENSSH PRIVATE KEY")
pk8_key, pk8_line = _pem("PRIVATE KEY")
db_password = rand(14, ALNUM) + "!"
url_password_slash = rand(8) + "/" + rand(8) + "+" + rand(4)
plain_password = "hunter2" + rand(5, string.digits)
word_password = "correcthorsebattery"
generic_token = rand(32, ALNUM)
hex_secret = rand(40, HEX)

PLANTED: list[tuple[str, str, str]] = [
    # provider shapes, bare in prose and code
    ("aws access key id", f"my key is {aws_id} ok", aws_id),
    (
        "aws secret in os.environ",
        f"os.environ['AWS_SECRET_ACCESS_KEY'] = '{aws_secret}'",
        aws_secret,
    ),
    ("aws secret in json", f'{{"aws_secret_access_key": "{aws_secret}"}}', aws_secret),
    ("aws secret in dict", f"creds = {{'aws_secret_access_key': '{aws_secret}'}}", aws_secret),
    ("aws secret in ini", f"[default]\naws_secret_access_key = {aws_secret}", aws_secret),
    (
        "aws secret in boto3 call",
        f"boto3.client('s3', aws_secret_access_key=\"{aws_secret}\")",
        aws_secret,
    ),
    ("openai project key", f"client = OpenAI(api_key='{openai_key}')", openai_key),
    ("openai key bare", f"use {openai_key}", openai_key),
    ("anthropic key", f"ANTHROPIC_API_KEY={anthropic_key}", anthropic_key),
    ("github classic", f"git clone https://{gh_classic}@github.com/org/repo", gh_classic),
    ("github fine-grained", f"token: {gh_fine}", gh_fine),
    ("github fine-grained bare", f"export GH={gh_fine}", gh_fine),
    ("github oauth", f"headers = {{'Authorization': 'token {gh_oauth}'}}", gh_oauth),
    ("gitlab", f"GITLAB={gitlab}", gitlab),
    ("slack bot", f"slack = WebClient('{slack_bot}')", slack_bot),
    ("slack webhook", f"requests.post('{slack_hook}', json=msg)", slack_hook.rsplit("/", 1)[1]),
    ("stripe live", f"stripe.api_key = '{stripe}'", stripe),
    ("stripe test long", f"key {stripe_test}", stripe_test),
    ("google api", f"maps = Client(key='{google}')", google),
    ("huggingface", f"login('{hf}')", hf),
    ("twilio", f"Client(account_sid, '{twilio}')", twilio),
    ("sendgrid", f"SendGridAPIClient('{sendgrid}')", sendgrid),
    ("pypi", f"password = {pypi}", pypi),
    ("npm", f"//registry.npmjs.org/:_authToken={npm}", npm),
    ("jwt", f"Authorization: Bearer {jwt}", jwt),
    ("jwt bare", f"token was {jwt} yesterday", jwt),
    ("azure storage", f"DefaultEndpointsProtocol=https;AccountName=x;{azure};", azure[11:]),
    ("discord", f"bot.run('{discord}')", discord),
    ("telegram", f"Bot(token='{telegram}')", telegram),
    ("mailchimp", f"MailChimp(mc_api='{mailchimp}')", mailchimp),
    ("rsa private key", f"key = '''{rsa_key}'''", rsa_line),
    ("openssh private key", ssh_key, ssh_line),
    ("pkcs8 private key", f"pem:\n{pk8_key}\n", pk8_line),
    # passwords in URLs
    ("postgres url", f"create_engine('postgresql://etl:{db_password}@db:5432/sales')", db_password),
    (
        "url password with slash",
        f"mysql+pymysql://app:{url_password_slash}@db/x",
        url_password_slash,
    ),
    (
        "mongodb srv",
        f"MongoClient('mongodb+srv://admin:{db_password}@cluster0.example.net')",
        db_password,
    ),
    ("redis url", f"redis://:{db_password}@cache:6379/0", db_password),
    (
        "https basic in url",
        f"pip install -i https://user:{db_password}@pypi.example.org/simple x",
        db_password,
    ),
    # secret-named assignments in many syntaxes
    ("python password", f'db_password = "{plain_password}"', plain_password),
    ("python password word", f"PASSWORD = '{word_password}'", word_password),
    ("yaml password", f"database:\n  password: {plain_password}\n", plain_password),
    ("dotenv token", f"SERVICE_TOKEN={generic_token}", generic_token),
    ("dotenv quoted", f'API_KEY="{generic_token}"', generic_token),
    ("json token", f'{{"access_token": "{generic_token}", "expires": 3600}}', generic_token),
    ("json client secret", f'{{"client_secret":"{generic_token}"}}', generic_token),
    ("kwargs secret", f"connect(user='me', password='{plain_password}')", plain_password),
    ("setdefault", f"os.environ.setdefault('MY_API_KEY', '{generic_token}')", generic_token),
    ("getenv default", f"os.getenv('DB_PASSWORD', '{plain_password}')", plain_password),
    ("walrus", f"(secret := '{generic_token}')", generic_token),
    ("js const", f"const apiKey = '{generic_token}';", generic_token),
    ("js object", f'fetch(url, {{headers: {{apiKey: "{generic_token}"}}}})', generic_token),
    ("shell export", f"export DATABASE_PASSWORD={plain_password}", plain_password),
    ("connection string", f"Server=db;User Id=sa;Password={plain_password};", plain_password),
    (
        "query string",
        f"https://api.example.com/v1?user=x&api_key={generic_token}&q=1",
        generic_token,
    ),
    ("cli flag", f"mysql -u root --password={plain_password} db", plain_password),
    ("toml", f'[auth]\ntoken = "{generic_token}"', generic_token),
    ("r-string", f"secret_key = r'{generic_token}'", generic_token),
    ("bytes", f"SECRET = b'{generic_token}'", generic_token),
    ("private key var", f"private_key = '{generic_token}'", generic_token),
    ("passphrase", f"passphrase: '{word_password}'", word_password),
    ("hex secret quoted", f"signing = '{hex_secret}'", hex_secret),
    # headers
    ("bearer header", f"curl -H 'Authorization: Bearer {generic_token}' https://x", generic_token),
    ("basic header", f"Authorization: Basic {rand(28, B64)}==", None),  # filled below
    ("x-api-key header", f"headers={{'X-Api-Key': '{generic_token}'}}", generic_token),
    # generated tokens under plain names (entropy)
    ("high entropy quoted", f"client = Service(cred='{rand(40, B64)}')", None),
    ("high entropy bare", f"the value {rand(44, ALNUM)} was printed", None),
]


def _fill(name: str, text: str, secret: str | None) -> tuple[str, str, str]:
    if secret is not None:
        return name, text, secret
    # the secret is the one long generated run in the text
    run = max(text.replace("'", " ").replace("=", " ").split(), key=len)
    return name, text, run.rstrip(")'}")


PLANTED = [_fill(*case) for case in PLANTED]

CLEAN: list[str] = [
    "def tokenize(text):\n    return text.split()\nkeys = list(d.keys())",
    "df.groupby('month').agg({'sales': 'sum'}).sort_values('sales', ascending=False)",
    "password = input('Password: ')",
    "token = tokenizer.encode(text)",
    "api_key = os.environ['OPENAI_API_KEY']",
    "secret = None",
    "SECRET_KEY = settings.SECRET_KEY",
    "for key, value in sorted(counts.items(), key=lambda kv: kv[1]):",
    "https://github.com/jupyterlab/jupyterlab/blob/main/README.md",
    "see https://example.org/a@b and http://host:8080/path@v2",
    "import numpy as np\nx = np.linspace(0, 10, 1000)\nplt.plot(x, np.sin(x))",
    "git checkout 3f2a9c1d8e7b6a5f4e3d2c1b0a9f8e7d6c5b4a39",
    "the sha is 9fceb02d0ae598e95dc970b74767f19372d61af8",
    "/home/user/projects/rubberduck/notebooks/analysis_2024_q3_final.ipynb",
    "ValueError: could not convert string to float: 'N/A'",
    "model = RandomForestClassifier(n_estimators=200, max_depth=12, random_state=42)",
    "test_rolling_mean_by_group_and_window_size_2 passed",
    "The bearer of this letter is a friend.",
    "Token authentication is configured in jupyter_server_config.py",
    "password_field = form.fields['password']",
    "def check_password(user, password):\n    return hash_password(password) == user.hash",
    "tokens = [t for t in doc if not t.is_stop]",
    "uuid = '123e4567-e89b-12d3-a456-426614174000'",
    "pd.read_csv('data/sales_2023-01-01_to_2023-12-31.csv', parse_dates=['date'])",
    "np.random.seed(20231124); idx = rng.integers(0, 1_000_000, size=64)",
    "SELECT user_id, COUNT(*) FROM events WHERE ts >= '2024-01-01' GROUP BY 1",
    "max_tokens=512, temperature=0.2, top_p=0.9",
    "https://docs.python.org/3/library/re.html#re.Pattern.finditer",
    "Ellipsis: api_key = '...' placeholder in docs",
    "ssh-keygen -t ed25519 -C 'me@example.com'",
]
