"""The compute tier for real AWS: where `semichat serve` runs, one CDK construct per way.

- `fargate.py`: an ECS Fargate service behind an Application Load Balancer;
- `function.py`: a Lambda function behind a function URL that streams (via the AWS Lambda Web
  Adapter in the image);
- `image.py`: the repository's `Dockerfile` as the CDK asset both run;
- `timeouts.py`: every timeout derived from the stream's maximum lifetime, and the rules they
  obey (pure); `templates.py` reads them back from a synthesized template;
- `pairings.py`: which routing strategy may run on which tier, and why not (pure);
- `config.py`, `environment.py`: the deployer's choices (CDK context) and the server's
  environment they make;
- `stacks.py`: one stack per allowed pairing (the strategy's IAM policy, the tier);
  `synthesis.py`: the whole app synthesized and checked, as `infra/cdk/app.py` runs it.

Below the CDK app, above `semichat/aws/` (tables, IAM): nothing here is imported by the server.
docs/deploy.md walks through a deployment.
"""

import os

# Before any module here imports aws_cdk: jsii's Node.js runtime reads these when it starts, and
# would otherwise print a banner on stderr that Node.js 20 (Debian 12's) is untested and past its
# end of life. It works; semichat/aws/stack.py sets the same for its own importers.
os.environ.setdefault("JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION", "1")
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "18,20")
