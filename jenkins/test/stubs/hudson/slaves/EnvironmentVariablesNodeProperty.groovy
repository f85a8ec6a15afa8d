package hudson.slaves
class EnvironmentVariablesNodeProperty { Map<String, String> envVars = [:] }
